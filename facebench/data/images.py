"""Decode face images and bring them to the 112x112 model crop.

Every reader (identity folders, RecordIO, .bin sets, pairs files) goes through
``load_face`` so the rule for images that are not already 112x112 is written once:

- ``align="none"``: the image must already be 112x112, else FacebenchError.
- ``align="center"`` (default): 112x112 images pass unchanged; any other size goes
  through ``facebench.data.align.center_crop`` (the documented centre-crop rule for
  roughly centred sets such as LFW deep-funneled or ../shared/data/celeba).
- ``align="mtcnn"`` / ``"yunet"`` / ``"retinaface"`` / ``"haar"``: ``facebench.data.align.align_face`` detects five
  landmarks and warps them onto the ArcFace template.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facebench.choices import ALIGN_CHOICES
from facebench.errors import FacebenchError
from facebench.input_spec import INPUT_SIZE

IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".webp")


def describe(image: str | Path | bytes) -> str:
    """A short name for an image in error messages: its path, or the size of encoded bytes."""
    if isinstance(image, bytes | bytearray | memoryview):
        return f"encoded image ({len(image)} bytes)"
    return str(image)


def decode_image(data: bytes, name: str) -> np.ndarray:
    """Encoded image bytes -> uint8 RGB HWC array; corrupt or truncated data -> FacebenchError."""
    try:  # OpenCV asserts (cv2.error) instead of returning None on an empty buffer
        array = cv2.imdecode(np.frombuffer(data, np.uint8), cv2.IMREAD_COLOR) if data else None
    except cv2.error:
        array = None
    if array is None:
        raise FacebenchError(
            f"{name}: corrupt, truncated or not an image; replace or delete it "
            "(or pass --skip-bad to skip bad images)"
        )
    return cv2.cvtColor(array, cv2.COLOR_BGR2RGB)


def read_bytes(path: str | Path) -> bytes:
    """The raw bytes of an image file; a missing or unreadable file -> FacebenchError naming it."""
    try:
        return Path(path).read_bytes()
    except FileNotFoundError:
        raise FacebenchError(f"{path}: image not found") from None
    except OSError as exc:
        raise FacebenchError(f"{path}: cannot read ({exc.strerror})") from None


def read_image(image: str | Path | bytes) -> np.ndarray:
    """Decode an image given as a file path or as encoded bytes -> uint8 RGB HWC."""
    if isinstance(image, bytes | bytearray | memoryview):
        return decode_image(bytes(image), describe(image))
    return decode_image(read_bytes(image), str(image))


def encode_jpeg(rgb: np.ndarray, quality: int = 95) -> bytes:
    """uint8 RGB HWC -> JPEG bytes (quality 95, as mxnet's pack_img)."""
    ok, buffer = cv2.imencode(".jpg", cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR), [cv2.IMWRITE_JPEG_QUALITY, quality])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return buffer.tobytes()


def check_align(align: str) -> str:
    """Validate an ``align`` choice early (before a long run), listing the valid ones."""
    if align not in ALIGN_CHOICES:
        raise FacebenchError(f"align {align!r} is not one of: {', '.join(ALIGN_CHOICES)}")
    return align


def to_face_crop(rgb: np.ndarray, align: str, name: str) -> np.ndarray:
    """An RGB image of any size -> the 112x112 crop, by the rule in this module's docstring."""
    check_align(align)
    if rgb.shape[:2] == (INPUT_SIZE, INPUT_SIZE) and align in ("none", "center"):
        return rgb
    if align == "none":
        height, width = rgb.shape[:2]
        raise FacebenchError(
            f"{name}: image is {width}x{height}, not {INPUT_SIZE}x{INPUT_SIZE}; "
            "align it first (facebench align) or use align 'center'"
        )
    from facebench.data import align as alignment

    if align == "center":
        return alignment.center_crop(rgb)
    return alignment.align_face(rgb, detector=align).image


def load_face(image: str | bytes, align: str = "center") -> np.ndarray:
    """Decode one image (path or encoded bytes) -> uint8 RGB (112, 112, 3) for to_model_input."""
    return to_face_crop(read_image(image), align, describe(image))
