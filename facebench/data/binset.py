"""insightface verification sets (``lfw.bin``, ``cfp_fp.bin``, ``agedb_30.bin``, ...).

A ``.bin`` is a pickle of ``(images, issame)``: ``images`` a list of 2P encoded images
(pair i is images 2i and 2i+1) and ``issame`` a list of P booleans. Files written by
Python 2 hold ``str`` images and need ``encoding="bytes"`` to load; both are tried,
as insightface's own loader does. Unpickling is restricted to the few types such
files contain (lists, bytes, bools, numpy arrays), so a crafted .bin cannot run code.
"""

from __future__ import annotations

import io
import pickle
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError
from facebench.fileio import atomic_path

_ALLOWED_GLOBALS = {
    ("_codecs", "encode"),                      # bytes pickled by Python 3 at protocol <= 2
    ("builtins", "bytearray"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.multiarray", "_reconstruct"),  # numpy < 2
    ("numpy._core.multiarray", "_reconstruct"),  # numpy >= 2
    ("numpy.core.multiarray", "scalar"),
    ("numpy._core.multiarray", "scalar"),
}


class _SafeUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) not in _ALLOWED_GLOBALS:
            raise pickle.UnpicklingError(f"unexpected object {module}.{name}")
        return super().find_class(module, name)


def _unpickle(data: bytes, path: Path):
    try:
        try:
            return _SafeUnpickler(io.BytesIO(data)).load()
        except UnicodeDecodeError:
            return _SafeUnpickler(io.BytesIO(data), encoding="bytes").load()
    except Exception as exc:  # pickle raises many types on bad input
        raise FacebenchError(
            f"{path}: not an insightface verification .bin ({type(exc).__name__}: {exc}); "
            "expected a pickle of (images, issame)"
        ) from None


def _as_bytes(image: object, position: int, path: Path) -> bytes:
    if isinstance(image, bytes | bytearray):
        return bytes(image)
    if isinstance(image, np.ndarray) and image.dtype == np.uint8 and image.ndim == 1:
        return image.tobytes()
    raise FacebenchError(f"{path}: image {position} is a {type(image).__name__}, not encoded image bytes")


def read_bin(path: str | Path) -> tuple[list[bytes], np.ndarray]:
    """Load a verification .bin -> (2P encoded images, issame bool array of P)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FacebenchError(f"{path}: verification set not found") from None
    content = _unpickle(data, path)
    if not (isinstance(content, tuple | list) and len(content) == 2):
        raise FacebenchError(f"{path}: expected a pickle of (images, issame), got {type(content).__name__}")
    images, issame = content
    images = [_as_bytes(image, i, path) for i, image in enumerate(images)]
    issame = np.asarray(issame, dtype=bool).reshape(-1)
    if len(images) != 2 * len(issame):
        raise FacebenchError(
            f"{path}: {len(images)} images for {len(issame)} pairs; a .bin needs exactly 2 images per pair"
        )
    if not len(issame):
        raise FacebenchError(f"{path}: holds no pairs")
    return images, issame


def write_bin(path: str | Path, images: Sequence[bytes], issame: Sequence[bool]) -> None:
    """Write a verification .bin (pickle protocol 4) atomically; images[2i], images[2i+1] is pair i."""
    if len(images) != 2 * len(issame):
        raise ValueError(f"{len(images)} images for {len(issame)} pairs: need 2 per pair")
    with atomic_path(path) as temp, temp.open("wb") as file:
        pickle.dump(([bytes(i) for i in images], [bool(s) for s in issame]), file, protocol=4)
