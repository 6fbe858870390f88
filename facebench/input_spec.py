"""What every zoo model expects as input: 112x112 RGB, (x/255 - 0.5) / 0.5.

Data readers, alignment, verification and profiling all build their tensors here so
the normalisation is written once.
"""

from __future__ import annotations

import numpy as np
import torch

INPUT_SIZE = 112  # pixels, square; the ArcFace crop
PIXEL_MEAN = 0.5  # after scaling to [0, 1]
PIXEL_STD = 0.5


def to_model_input(images: np.ndarray) -> torch.Tensor:
    """uint8 RGB image(s), HWC or NHWC, -> float32 tensor CHW or NCHW normalised to [-1, 1]."""
    if images.dtype != np.uint8:
        raise TypeError(f"expected uint8 images, got {images.dtype}")
    # numpy, not torch: per-image torch ops dispatch to the intra-op thread pool, which on a
    # busy machine made one 112x112 image cost ~40 ms instead of ~0.15 ms
    scaled = (images.astype(np.float32) * np.float32(1 / 255.0) - np.float32(PIXEL_MEAN)) / np.float32(PIXEL_STD)
    axes = (2, 0, 1) if images.ndim == 3 else (0, 3, 1, 2)
    return torch.from_numpy(np.ascontiguousarray(scaled.transpose(axes)))


def random_input(batch_size: int = 1, *, seed: int = 0) -> torch.Tensor:
    """A deterministic batch in the model's input range, for shape checks and timing."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, 3, INPUT_SIZE, INPUT_SIZE, generator=generator) * 2 - 1
