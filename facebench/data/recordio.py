"""insightface's packed training sets (``train.rec`` + ``train.idx`` + ``property``), pure Python.

File format (dmlc-core recordio, as mxnet writes it; no mxnet needed here):

- ``train.rec`` is a sequence of chunks ``magic lrecord data pad``: ``magic`` is the
  uint32 0xced7230a, ``lrecord`` a uint32 whose top 3 bits are a continuation flag
  (``cflag``) and low 29 bits the data length, ``pad`` zero bytes up to a multiple of 4.
  A record whose data holds the magic word at a 4-byte aligned position is split
  there (cflag 1 = first part, 2 = middle, 3 = last; 0 = whole record) and the magic
  words between the parts are dropped; the reader puts them back.
- ``train.idx`` has one ``key<TAB>byte offset`` line per record.
- Each record is an image record: the IRHeader struct ``IfQQ`` (flag, label, id, id2),
  then, when flag > 0, ``flag`` float32 labels, then the encoded image.
- insightface layout (MXFaceDataset): record 0 is a header whose labels (a, b) say
  images are records 1..a-1 and identity records a..b-1 (each labelled with its
  image range [start, end)); ``property`` holds ``num_classes,height,width``.
"""

from __future__ import annotations

import contextlib
import functools
import os
import struct
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from facebench.data.images import check_align, decode_image, describe, to_face_crop
from facebench.data.transforms import eval_transform
from facebench.errors import FacebenchError
from facebench.fileio import atomic_path, read_text_input
from facebench.input_spec import INPUT_SIZE

MAGIC = 0xCED7230A
_MAGIC_BYTES = struct.pack("<I", MAGIC)
_CHUNK_HEAD = struct.Struct("<II")      # magic, lrecord
_IR_HEADER = struct.Struct("<IfQQ")     # flag, label, id, id2 (24 bytes)
_LENGTH_BITS = 29
_MAX_CHUNK = (1 << _LENGTH_BITS) - 1


@dataclass(frozen=True)
class IRHeader:
    """mxnet's image-record header; ``label`` is a float, or a float32 array when flag > 0."""

    flag: int
    label: float | np.ndarray
    id: int
    id2: int


def pack_record(label: float | Iterable[float], payload: bytes, *, record_id: int = 0, id2: int = 0) -> bytes:
    """IRHeader + payload, as mxnet.recordio.pack: a sequence label is stored after the header."""
    if isinstance(label, int | float | np.integer | np.floating):
        return _IR_HEADER.pack(0, float(label), record_id, id2) + payload
    labels = np.asarray(list(label), dtype="<f4")
    return _IR_HEADER.pack(labels.size, 0.0, record_id, id2) + labels.tobytes() + payload


def unpack_record(record: bytes, where: str = "record") -> tuple[IRHeader, bytes]:
    """Inverse of pack_record: (header, payload); a record too short for its header -> FacebenchError."""
    if len(record) < _IR_HEADER.size:
        raise FacebenchError(f"{where}: {len(record)} bytes, too short for the 24-byte image-record header")
    flag, label, record_id, id2 = _IR_HEADER.unpack_from(record)
    body = record[_IR_HEADER.size:]
    if flag > 0:
        if len(body) < 4 * flag:
            raise FacebenchError(f"{where}: header announces {flag} labels but the record ends before them")
        return IRHeader(flag, np.frombuffer(body, "<f4", flag).copy(), record_id, id2), body[4 * flag:]
    return IRHeader(flag, label, record_id, id2), body


class RecordWriter:
    """Appends records to a binary file object in dmlc recordio framing; ``write`` returns the offset."""

    def __init__(self, fileobj) -> None:
        self._file = fileobj
        self.offset = fileobj.tell()

    def _chunk(self, cflag: int, data: bytes) -> None:
        self._file.write(_CHUNK_HEAD.pack(MAGIC, (cflag << _LENGTH_BITS) | len(data)))
        self._file.write(data)
        self.offset += _CHUNK_HEAD.size + len(data)

    def write(self, record: bytes) -> int:
        if len(record) > _MAX_CHUNK:
            raise ValueError(f"record of {len(record)} bytes exceeds recordio's 2^29-1 limit")
        start = self.offset
        begin = 0            # start of the part not yet written
        search = 0
        while (hit := record.find(_MAGIC_BYTES, search)) != -1:
            search = hit + 1
            if hit % 4:      # only 4-byte aligned magic words are escaped (as dmlc-core)
                continue
            self._chunk(1 if begin == 0 else 2, record[begin:hit])
            begin = hit + 4
            search = begin
        self._chunk(3 if begin else 0, record[begin:])
        pad = -len(record[begin:]) % 4
        self._file.write(b"\0" * pad)
        self.offset += pad
        return start


class RecordReader:
    """Random access to records of a .rec file by byte offset (os.pread: safe to share across
    DataLoader workers, reopened after pickling)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            raise FacebenchError(f"{self.path}: record file not found")
        self.size = self.path.stat().st_size
        self._fd: int | None = None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_fd": None}

    def __del__(self) -> None:
        if getattr(self, "_fd", None) is not None:
            os.close(self._fd)

    def _pread(self, size: int, offset: int) -> bytes:
        if self._fd is None:
            self._fd = os.open(self.path, os.O_RDONLY)
        return os.pread(self._fd, size, offset)

    def read_at(self, offset: int) -> bytes:
        """The record starting at byte ``offset``; bad magic or a truncated record -> FacebenchError."""
        parts: list[bytes] = []
        position = offset
        while True:
            head = self._pread(_CHUNK_HEAD.size, position)
            if len(head) < _CHUNK_HEAD.size:
                raise FacebenchError(
                    f"{self.path}: truncated record at byte offset {position}: the file ends at byte "
                    f"{self.size}; the .rec is incomplete (re-copy or re-pack it)"
                )
            magic, lrecord = _CHUNK_HEAD.unpack(head)
            if magic != MAGIC:
                raise FacebenchError(
                    f"{self.path}: bad magic 0x{magic:08x} at byte offset {position} (expected 0x{MAGIC:08x}); "
                    "not an MXNet RecordIO file, or its .idx belongs to another .rec"
                )
            cflag, length = lrecord >> _LENGTH_BITS, lrecord & _MAX_CHUNK
            if cflag > 3 or (not parts and cflag in (2, 3)):
                raise FacebenchError(
                    f"{self.path}: byte offset {position} is not the start of a record (flag {cflag}); "
                    "the .idx does not match this .rec"
                )
            data = self._pread(length, position + _CHUNK_HEAD.size)
            if len(data) < length:
                raise FacebenchError(
                    f"{self.path}: truncated record at byte offset {position}: it needs {length} data bytes "
                    f"but the file ends at byte {self.size}; the .rec is incomplete (re-copy or re-pack it)"
                )
            parts.append(data)
            position += _CHUNK_HEAD.size + length + (-length % 4)
            if cflag in (0, 3):
                return b"".join(parts)
            parts.append(_MAGIC_BYTES)


def read_index(path: str | Path) -> dict[int, int]:
    """``key<TAB>offset`` lines -> {key: offset}, in file order; a bad line -> FacebenchError file:line."""
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"{path}: index file not found; train.rec needs its train.idx beside it")
    index: dict[int, int] = {}
    with path.open(encoding="utf-8-sig") as lines:  # streamed (MS1M's has 5.8 M lines); a BOM and CRLF accepted
        for number, line in enumerate(lines, 1):
            fields = line.split()
            if not fields:
                continue
            try:
                key, offset = (int(f) for f in fields)
            except ValueError:
                raise FacebenchError(
                    f"{path}:{number}: {line.strip()!r} is not an index line; expected 'key<TAB>byte offset'"
                ) from None
            index[key] = offset
    return index


@dataclass(frozen=True)
class RecordPaths:
    """The three files of an insightface training set."""

    rec: Path
    idx: Path
    property: Path

    @classmethod
    def of(cls, path: str | Path) -> RecordPaths:
        """From a folder holding train.rec, or from the .rec file itself."""
        path = Path(path)
        rec = path / "train.rec" if path.is_dir() else path
        return cls(rec, rec.with_suffix(".idx"), rec.parent / "property")


def read_property(path: Path) -> tuple[int, int, int] | None:
    """``num_classes,height,width`` from insightface's property file; None when absent."""
    if not path.is_file():
        return None
    text = read_text_input(path).strip()
    try:
        num_classes, height, width = (int(v) for v in text.split(","))
    except ValueError:
        raise FacebenchError(f"{path}:1: {text!r} is not 'num_classes,height,width'") from None
    return num_classes, height, width


def _class_label(header: IRHeader) -> int:
    """An image record's class: its label, or the first of several (as insightface reads it)."""
    return int(header.label if np.isscalar(header.label) else header.label[0])


class RecordDataset(Dataset):
    """(3x112x112 normalised tensor, label) from insightface ``train.rec``/``train.idx``."""

    def __init__(
        self,
        path: str | Path,
        *,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
        align: str = "center",
    ) -> None:
        self.paths = RecordPaths.of(path)
        self.transform = transform or eval_transform()
        self.align = check_align(align)
        self.reader = RecordReader(self.paths.rec)
        self.index = read_index(self.paths.idx)
        self.header0: tuple[int, int] | None = None
        header = self.header(0) if 0 in self.index else None
        if header is not None and header.flag > 0:
            image_end, identity_end = (int(v) for v in header.label[:2])
            self.header0 = (image_end, identity_end)
            self.keys = list(range(1, image_end))
        else:
            self.keys = list(self.index)
        missing = [k for k in self.keys[:1] + self.keys[-1:] if k not in self.index]
        if missing:
            raise FacebenchError(f"{self.paths.idx}: record {missing[0]} named by the header record is not indexed")

    def record(self, key: int) -> tuple[IRHeader, bytes]:
        """(header, encoded image) of the record with this key."""
        offset = self.index.get(key)
        if offset is None:
            raise FacebenchError(f"{self.paths.idx}: no record with key {key}")
        return unpack_record(self.reader.read_at(offset), f"{self.paths.rec} record {key} (byte offset {offset})")

    def header(self, key: int) -> IRHeader:
        return self.record(key)[0]

    @functools.cached_property
    def num_classes(self) -> int:
        """From ``property``, else from the header record's identity range, else 1 + the largest label."""
        prop = read_property(self.paths.property)
        if prop is not None:
            return prop[0]
        if self.header0 is not None and self.header0[1] > self.header0[0]:
            return self.header0[1] - self.header0[0]
        return 1 + max(self.label(i) for i in range(len(self)))

    def label(self, index: int) -> int:
        """The class label of image ``index``."""
        return _class_label(self.header(self.keys[index]))

    def __len__(self) -> int:
        return len(self.keys)

    def source(self, index: int) -> bytes:
        """Image ``index`` as stored (its encoded bytes), for a teacher with its own preprocessing."""
        return self.record(self.keys[index])[1]

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        key = self.keys[index]
        header, payload = self.record(key)
        name = f"{self.paths.rec} record {key}"
        face = to_face_crop(decode_image(payload, name), self.align, name)
        return self.transform(face), _class_label(header)


def write_recordio(
    out_dir: str | Path, samples: Iterable[tuple[bytes, int]], num_classes: int, image_size: int = INPUT_SIZE
) -> RecordPaths:
    """Write (encoded image, label) samples, grouped by ascending label, as insightface's
    train.rec/train.idx/property in out_dir; a failure leaves no half-written set."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    final = RecordPaths(out / "train.rec", out / "train.idx", out / "property")
    with contextlib.ExitStack() as stack:  # all three are renamed only after all were written
        rec_temp, idx_temp, property_temp = (stack.enter_context(atomic_path(p)) for p in
                                             (final.rec, final.idx, final.property))
        offsets: list[int] = []
        starts: list[int] = []   # first image key of each label
        with rec_temp.open("wb") as rec_file:
            writer = RecordWriter(rec_file)
            offsets.append(writer.write(pack_record([0.0, 0.0], b"")))  # header, rewritten below
            previous = -1
            for payload, label in samples:
                if label < previous or label >= num_classes:
                    raise ValueError(f"labels must ascend within [0, {num_classes}); got {label} after {previous}")
                key = len(offsets)
                starts.extend([key] * (label - previous))
                previous = label
                offsets.append(writer.write(pack_record(float(label), payload, record_id=key)))
            image_end = len(offsets)
            starts.extend([image_end] * (num_classes - 1 - previous))
            ends = starts[1:] + [image_end]
            for label in range(num_classes):
                offsets.append(writer.write(pack_record([starts[label], ends[label]], b"", record_id=len(offsets))))
            identity_end = len(offsets)
            rec_file.seek(0)  # the header record has a fixed size, so it can be rewritten in place
            RecordWriter(rec_file).write(pack_record([image_end, identity_end], b""))
        idx_temp.write_text("".join(f"{key}\t{offset}\n" for key, offset in enumerate(offsets)))
        property_temp.write_text(f"{num_classes},{image_size},{image_size}\n")
    return final


@dataclass
class PackSummary:
    """What ``pack_folders`` wrote."""

    paths: RecordPaths
    images: int
    identities: int
    copied: int          # already 112x112: original bytes stored
    reencoded: int       # cropped/aligned to 112x112 and JPEG-encoded
    skipped: list[str]   # unreadable images left out (skip_bad)


def pack_folders(
    src: str | Path,
    out_dir: str | Path,
    *,
    align: str = "center",
    min_images: int = 1,
    max_images: int | None = None,
    skip_bad: bool = False,
    quality: int = 95,
    progress: Callable[[int], None] | None = None,
) -> PackSummary:
    """Identity folders -> insightface train.rec/train.idx/property (labels as IdentityFolderDataset).

    112x112 images are stored byte for byte; others go through the dataset rule
    (``align``) and are stored as JPEG at ``quality``. ``progress(n)`` is called per image.
    """
    from facebench.data.folders import scan_identity_folders
    from facebench.data.images import encode_jpeg, read_bytes

    check_align(align)
    folders = scan_identity_folders(src, min_images=min_images, max_images=max_images)
    tally = {"copied": 0, "reencoded": 0}
    skipped: list[str] = []

    def samples() -> Iterable[tuple[bytes, int]]:
        for path, label in zip(folders.files, folders.labels, strict=True):
            try:
                data = read_bytes(path)
                rgb = decode_image(data, describe(path))
                face = to_face_crop(rgb, align, str(path))
                if face is rgb:  # already the 112x112 crop: keep the original bytes
                    tally["copied"] += 1
                else:
                    data = encode_jpeg(face, quality)
                    tally["reencoded"] += 1
            except FacebenchError:
                if not skip_bad:
                    raise
                skipped.append(str(path))
                continue
            finally:
                if progress is not None:
                    progress(1)
            yield data, label

    paths = write_recordio(out_dir, samples(), len(folders.identities))
    return PackSummary(paths, tally["copied"] + tally["reencoded"], len(folders.identities),
                       tally["copied"], tally["reencoded"], skipped)
