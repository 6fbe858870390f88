"""insightface RecordIO: exact framing, round trips, random access, errors with byte offsets."""

from __future__ import annotations

import io
import struct
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import make_tree, random_rgb, write_image

from facebench.data.images import decode_image, encode_jpeg
from facebench.data.recordio import (
    MAGIC,
    RecordDataset,
    RecordReader,
    RecordWriter,
    pack_folders,
    pack_record,
    read_index,
    unpack_record,
    write_recordio,
)
from facebench.errors import FacebenchError
from facebench.input_spec import to_model_input

MAGIC_LE = bytes([0x0A, 0x23, 0xD7, 0xCE])  # 0xced7230a little-endian, written out by hand


def frame(records: list[bytes]) -> tuple[bytes, list[int]]:
    buffer = io.BytesIO()
    writer = RecordWriter(buffer)
    offsets = [writer.write(r) for r in records]
    return buffer.getvalue(), offsets


def test_framing_matches_dmlc_layout_byte_for_byte() -> None:
    assert MAGIC.to_bytes(4, "little") == MAGIC_LE
    data, offsets = frame([b"abcde", b"wxyz"])
    expected = (MAGIC_LE + (5).to_bytes(4, "little") + b"abcde\0\0\0"
                + MAGIC_LE + (4).to_bytes(4, "little") + b"wxyz")
    assert data == expected
    assert offsets == [0, 16]


def test_aligned_magic_inside_data_is_split_and_restored(tmp_path: Path) -> None:
    record = b"xxxx" + MAGIC_LE + b"yy" + b"a" + MAGIC_LE + b"zzz"  # second magic not 4-aligned: kept
    data, _ = frame([record])
    first = MAGIC_LE + ((1 << 29) | 4).to_bytes(4, "little") + b"xxxx"
    last_part = b"yya" + MAGIC_LE + b"zzz"  # 10 bytes, padded to 12
    last = MAGIC_LE + ((3 << 29) | len(last_part)).to_bytes(4, "little") + last_part + b"\0\0"
    assert data == first + last
    path = tmp_path / "x.rec"
    path.write_bytes(data)
    assert RecordReader(path).read_at(0) == record


def test_three_part_record_round_trip(tmp_path: Path) -> None:
    record = MAGIC_LE * 3 + b"tail!"
    data, _ = frame([b"first", record, b"last"])
    path = tmp_path / "x.rec"
    path.write_bytes(data)
    reader = RecordReader(path)
    _, offsets = frame([b"first", record, b"last"])
    assert [reader.read_at(o) for o in offsets] == [b"first", record, b"last"]


def test_ir_header_struct() -> None:
    packed = pack_record(7.0, b"IMG", record_id=3)
    assert packed == struct.pack("<IfQQ", 0, 7.0, 3, 0) + b"IMG"
    header, payload = unpack_record(packed)
    assert (header.flag, header.label, header.id, payload) == (0, 7.0, 3, b"IMG")
    multi = pack_record([1.0, 2.5], b"P")
    assert multi[:24] == struct.pack("<IfQQ", 2, 0.0, 0, 0)
    header, payload = unpack_record(multi)
    assert header.flag == 2 and header.label.tolist() == [1.0, 2.5] and payload == b"P"


def make_samples(count: int, classes: int) -> list[tuple[bytes, int]]:
    labels = sorted(np.random.default_rng(1).integers(0, classes, size=count).tolist())
    return [(encode_jpeg(random_rgb(112, seed=i)), label) for i, label in enumerate(labels)]


def test_round_trip_bytes_labels_and_random_access(tmp_path: Path) -> None:
    samples = make_samples(23, classes=5)
    paths = write_recordio(tmp_path / "set", samples, num_classes=6)  # class 5 has no images
    assert paths.property.read_text() == "6,112,112\n"
    dataset = RecordDataset(tmp_path / "set")
    assert len(dataset) == 23 and dataset.num_classes == 6
    assert dataset.header0 == (24, 30)  # images 1..23, identity records 24..29
    order = np.random.default_rng(0).permutation(23)
    for i in order:  # random access through the .idx
        header, payload = dataset.record(int(i) + 1)
        assert payload == samples[i][0]
        assert header.label == samples[i][1] and dataset.label(int(i)) == samples[i][1]
    # identity records hold each class's image range [start, end), as insightface's
    labels = [label for _, label in samples]
    for label in range(6):
        keys = [k + 1 for k, value in enumerate(labels) if value == label]
        start, end = dataset.header(24 + label).label.tolist()
        if keys:
            assert (start, end) == (keys[0], keys[-1] + 1)
        else:
            assert start == end
    tensor, label = dataset[4]
    assert label == samples[4][1]
    expected = to_model_input(decode_image(samples[4][0], "x"))
    assert tensor.shape == (3, 112, 112) and bool((tensor == expected).all())


def test_rec_path_given_directly_and_index_parsed(tmp_path: Path) -> None:
    write_recordio(tmp_path, make_samples(3, classes=2), num_classes=2)
    index = read_index(tmp_path / "train.idx")
    assert list(index) == [0, 1, 2, 3, 4, 5]
    assert len(RecordDataset(tmp_path / "train.rec")) == 3


def test_set_without_header_record_or_property(tmp_path: Path) -> None:
    """A plain image .rec (flag 0 everywhere): every indexed record is an image."""
    jpegs = [encode_jpeg(random_rgb(112, seed=i)) for i in range(4)]
    with (tmp_path / "train.rec").open("wb") as f:
        writer = RecordWriter(f)
        offsets = [writer.write(pack_record(float(i % 3), j, record_id=i)) for i, j in enumerate(jpegs)]
    (tmp_path / "train.idx").write_text("".join(f"{i}\t{o}\n" for i, o in enumerate(offsets)))
    dataset = RecordDataset(tmp_path)
    assert len(dataset) == 4 and dataset.header0 is None
    assert [dataset[i][1] for i in range(4)] == [0, 1, 2, 0]
    assert dataset.num_classes == 3


def test_bad_magic_names_the_offset(tmp_path: Path) -> None:
    write_recordio(tmp_path, make_samples(4, classes=2), num_classes=2)
    index = read_index(tmp_path / "train.idx")
    data = bytearray((tmp_path / "train.rec").read_bytes())
    data[index[3]:index[3] + 4] = b"JUNK"
    (tmp_path / "train.rec").write_bytes(bytes(data))
    dataset = RecordDataset(tmp_path)
    dataset[1]  # others still readable
    with pytest.raises(FacebenchError, match=f"bad magic 0x4b4e554a at byte offset {index[3]} "):
        dataset[2]


def test_truncated_record_names_the_offset(tmp_path: Path) -> None:
    samples = make_samples(4, classes=2)
    write_recordio(tmp_path, samples, num_classes=2)
    index = read_index(tmp_path / "train.idx")
    data = (tmp_path / "train.rec").read_bytes()
    (tmp_path / "train.rec").write_bytes(data[: index[4] + 100])  # cut inside the last image record
    dataset = RecordDataset(tmp_path)
    assert dataset.record(3)[1] == samples[2][0]
    with pytest.raises(FacebenchError, match=f"truncated record at byte offset {index[4]}: .* ends at byte "
                                              f"{index[4] + 100}"):
        dataset[3]
    (tmp_path / "train.rec").write_bytes(data[: index[4] + 5])  # cut inside the chunk head
    with pytest.raises(FacebenchError, match=f"truncated record at byte offset {index[4]}"):
        RecordDataset(tmp_path)[3]


def test_index_pointing_inside_a_record(tmp_path: Path) -> None:
    write_recordio(tmp_path, make_samples(2, classes=1), num_classes=1)
    index = read_index(tmp_path / "train.idx")
    (tmp_path / "train.idx").write_text("".join(f"{k}\t{o + (8 if k == 2 else 0)}\n" for k, o in index.items()))
    with pytest.raises(FacebenchError, match=f"bad magic .* at byte offset {index[2] + 8}"):
        RecordDataset(tmp_path)[1]


def test_missing_index_and_bad_index_line(tmp_path: Path) -> None:
    write_recordio(tmp_path, make_samples(2, classes=1), num_classes=1)
    (tmp_path / "train.idx").write_text("0\t0\n1\tnot-a-number\n")
    with pytest.raises(FacebenchError, match=r"train\.idx:2: .* expected 'key<TAB>byte offset'"):
        RecordDataset(tmp_path)
    (tmp_path / "train.idx").unlink()
    with pytest.raises(FacebenchError, match="train.idx: index file not found"):
        RecordDataset(tmp_path)


def test_pack_folders_copies_112_bytes_and_crops_others(tmp_path: Path) -> None:
    written = make_tree(tmp_path / "src", {"bob": 2, "alice": 3})
    big = random_rgb(250, seed=99)
    write_image(tmp_path / "src" / "bob" / "zz_big.png", big)
    summary = pack_folders(tmp_path / "src", tmp_path / "out")
    assert (summary.images, summary.identities, summary.copied, summary.reencoded) == (6, 2, 5, 1)
    dataset = RecordDataset(tmp_path / "out")
    ordered = sorted(written)  # alice (label 0) first, then bob (label 1); files by name
    for key, path in enumerate(ordered, 1):
        header, payload = dataset.record(key)
        assert payload == written[path] and header.label == (0 if path.parent.name == "alice" else 1)
    header, payload = dataset.record(6)
    from facebench.data.align import center_crop

    assert header.label == 1
    crop = decode_image(payload, "x")
    assert crop.shape == (112, 112, 3)
    assert np.abs(crop.astype(int) - center_crop(big).astype(int)).mean() < 3  # JPEG at quality 95


def test_pack_corrupt_image_stops_or_is_skipped(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", {"a": 2, "b": 2})
    bad = tmp_path / "src" / "b" / "img002.jpg"
    bad.write_bytes(bad.read_bytes()[:300])
    with pytest.raises(FacebenchError, match=f"{bad}: corrupt"):
        pack_folders(tmp_path / "src", tmp_path / "out")
    assert not (tmp_path / "out" / "train.rec").exists()
    assert [p.name for p in (tmp_path / "out").iterdir()] == []  # no temporary files left either
    summary = pack_folders(tmp_path / "src", tmp_path / "out", skip_bad=True)
    assert summary.skipped == [str(bad)] and summary.images == 3
    assert len(RecordDataset(tmp_path / "out")) == 3
