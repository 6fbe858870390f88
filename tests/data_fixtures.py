"""Tiny image trees for the data tests, made in tmp_path."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np


def random_rgb(size: int | tuple[int, int] = 112, seed: int = 0) -> np.ndarray:
    """A smooth random uint8 RGB image (smooth so JPEG keeps it recognisable)."""
    height, width = (size, size) if isinstance(size, int) else size
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, size=(max(2, height // 8), max(2, width // 8), 3), dtype=np.uint8)
    return cv2.resize(small, (width, height), interpolation=cv2.INTER_LINEAR)


def write_image(path: Path, rgb: np.ndarray) -> bytes:
    """Encode by suffix (.jpg/.png), write, return the bytes written."""
    path.parent.mkdir(parents=True, exist_ok=True)
    ok, buffer = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    assert ok
    path.write_bytes(buffer.tobytes())
    return buffer.tobytes()


def make_tree(root: Path, counts: dict[str, int], size: int | tuple[int, int] = 112,
              lfw_names: bool = False) -> dict[Path, bytes]:
    """root/<identity>/<image>.jpg with counts[identity] images each -> {path: bytes}."""
    written = {}
    seed = 0
    for identity, count in counts.items():
        for k in range(1, count + 1):
            name = f"{identity}_{k:04d}.jpg" if lfw_names else f"img{k:03d}.jpg"
            path = root / identity / name
            written[path] = write_image(path, random_rgb(size, seed))
            seed += 1
    return written
