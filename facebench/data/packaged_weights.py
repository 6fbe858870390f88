"""Detector weights shipped inside the package (facebench/data/weights), checked by SHA-256.

YuNet (OpenCV zoo, MIT) and RetinaFace MobileNet-0.25 (biubug6/Pytorch_Retinaface, MIT) are
small enough to ship as package data with their licence notices (weights/LICENSE-*.txt), so
``--detector yunet|retinaface`` works on a fresh install without a network. A file that is
missing or altered is refused with one line naming it and the SHA-256 it should have.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from facebench.errors import FacebenchError

WEIGHTS_DIR = Path(__file__).with_name("weights")
PACKAGED_SHA256 = {
    "face_detection_yunet_2026may.onnx": "ebafce4e3c118d6554634be5c27ab333b4c047a9a8c3faf1d7cf93101c22f0f0",
    "mobilenet0.25_Final.pth": "2979b33ffafda5d74b6948cd7a5b9a7a62f62b949cef24e95fd15d2883a65220",
}
FIX = "fix: reinstall facebench (pip install --force-reinstall facebench), or use --detector mtcnn"


def checked_weight_path(file: str, folder: Path | None = None) -> Path:
    """The path of a packaged weight file whose SHA-256 matches PACKAGED_SHA256; FacebenchError otherwise."""
    expected = PACKAGED_SHA256[file]
    path = (folder or WEIGHTS_DIR) / file
    if not path.is_file():
        raise FacebenchError(f"{path}: detector weights missing (expected sha256 {expected}); {FIX}")
    actual = hashlib.sha256(path.read_bytes()).hexdigest()
    if actual != expected:
        raise FacebenchError(f"{path}: detector weights altered (sha256 {actual}, expected {expected}); {FIX}")
    return path
