"""insightface verification .bin sets: round trip, Python 2 pickles, refusing code in pickles."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pytest
from data_fixtures import random_rgb

from facebench.data import load_face, read_pairs
from facebench.data.binset import read_bin, write_bin
from facebench.data.images import encode_jpeg
from facebench.errors import FacebenchError


def jpegs(count: int) -> list[bytes]:
    return [encode_jpeg(random_rgb(112, seed=i)) for i in range(count)]


def test_round_trip(tmp_path: Path) -> None:
    images, issame = jpegs(6), [True, False, True]
    write_bin(tmp_path / "tiny.bin", images, issame)
    got_images, got_issame = read_bin(tmp_path / "tiny.bin")
    assert got_images == images
    assert got_issame.dtype == bool and got_issame.tolist() == issame


def python2_pickle(images: list[bytes], issame: list[bool]) -> bytes:
    """What Python 2's pickle.dump((bins, issame), f, protocol=2) writes: str items as BINSTRING."""
    body = b"\x80\x02(]("  # PROTO 2, MARK, EMPTY_LIST, MARK
    for image in images:
        body += b"T" + len(image).to_bytes(4, "little") + image  # BINSTRING: a Python 2 str
    body += b"e]("  # APPENDS, EMPTY_LIST, MARK
    body += b"".join(b"\x88" if s else b"\x89" for s in issame)  # NEWTRUE / NEWFALSE
    return body + b"et."  # APPENDS, TUPLE, STOP


def test_python2_pickle_needs_bytes_encoding_and_loads(tmp_path: Path) -> None:
    images, issame = jpegs(4), [False, True]
    data = python2_pickle(images, issame)
    with pytest.raises(UnicodeDecodeError):
        pickle.loads(data)  # what the fallback exists for
    (tmp_path / "py2.bin").write_bytes(data)
    got_images, got_issame = read_bin(tmp_path / "py2.bin")
    assert got_images == images and got_issame.tolist() == issame


def test_numpy_issame_and_uint8_array_images(tmp_path: Path) -> None:
    images = jpegs(2)
    with (tmp_path / "np.bin").open("wb") as f:
        pickle.dump(([np.frombuffer(images[0], np.uint8), images[1]], np.array([True])), f)
    got_images, got_issame = read_bin(tmp_path / "np.bin")
    assert got_images == images and got_issame.tolist() == [True]


def test_pairset_from_bin(tmp_path: Path) -> None:
    images = jpegs(4)
    write_bin(tmp_path / "agedb_30.bin", images, [True, False])
    pairs = read_pairs(tmp_path / "agedb_30.bin")
    assert pairs.name == "agedb_30" and pairs.folds is None and pairs.lines is None
    assert pairs.left.tolist() == [0, 2] and pairs.right.tolist() == [1, 3]
    assert pairs.issame.tolist() == [True, False]
    face = load_face(pairs.images[pairs.right[1]])
    assert face.shape == (112, 112, 3) and face.dtype == np.uint8


class Exploit:
    def __reduce__(self):
        return (print, ("pwned",))


def test_pickle_with_code_is_refused(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    with (tmp_path / "evil.bin").open("wb") as f:
        pickle.dump(([Exploit(), b"x"], [True]), f)
    with pytest.raises(FacebenchError, match=r"evil\.bin: not an insightface verification \.bin .*builtins\.print"):
        read_bin(tmp_path / "evil.bin")
    assert "pwned" not in capsys.readouterr().out


def test_bad_contents(tmp_path: Path) -> None:
    write_bin(tmp_path / "odd.bin", jpegs(2), [True])
    data = pickle.dumps((jpegs(3), [True]))
    (tmp_path / "odd.bin").write_bytes(data)
    with pytest.raises(FacebenchError, match="3 images for 1 pairs"):
        read_bin(tmp_path / "odd.bin")
    (tmp_path / "text.bin").write_text("hello")
    with pytest.raises(FacebenchError, match=r"text\.bin: not an insightface verification \.bin"):
        read_bin(tmp_path / "text.bin")
    with pytest.raises(FacebenchError, match="not found"):
        read_bin(tmp_path / "missing.bin")
    with pytest.raises(ValueError):
        write_bin(tmp_path / "w.bin", jpegs(3), [True])
    assert not (tmp_path / "w.bin").exists()


def test_corrupt_image_in_bin_is_named_by_size() -> None:
    with pytest.raises(FacebenchError, match=r"encoded image \(5 bytes\): corrupt"):
        load_face(b"hello")
