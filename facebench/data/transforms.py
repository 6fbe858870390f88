"""What a dataset does to a 112x112 face before batching: augmentation, then the model's input spec."""

from __future__ import annotations

import numpy as np
import torch

from facebench.choices import AUGMENTS
from facebench.errors import FacebenchError
from facebench.input_spec import ARCFACE, InputSpec

SHIFT_PIXELS = 8  # flip-shift: the largest translation, in pixels of the 112x112 face (7 %)


class FaceTransform:
    """uint8 RGB 112x112 face -> normalised CHW tensor; with ``flip``, mirrored with probability 0.5; with
    ``shift``, translated by a uniform whole number of pixels in [-shift, shift] on each axis (edges repeated).

    Uses torch's RNG, which DataLoader seeds differently in each worker, so workers do
    not repeat each other's draws.
    """

    def __init__(self, *, flip: bool, shift: int = 0, spec: InputSpec = ARCFACE) -> None:
        self.flip = flip
        self.shift = shift
        self.spec = spec

    def __call__(self, face: np.ndarray) -> torch.Tensor:
        if self.flip and torch.rand(()) < 0.5:
            face = face[:, ::-1]
        if self.shift:
            s = self.shift
            dy, dx = (int(v) for v in torch.randint(-s, s + 1, (2,)))
            height, width = face.shape[:2]
            padded = np.pad(face, ((s, s), (s, s), (0, 0)), mode="edge")
            face = padded[s - dy : s - dy + height, s - dx : s - dx + width]  # content moves by (dy, dx)
        return self.spec.to_tensor(face)

    def __repr__(self) -> str:
        return f"FaceTransform(flip={self.flip}, shift={self.shift}, spec={self.spec.describe()!r})"


def train_transform(spec: InputSpec = ARCFACE, augment: str = "flip") -> FaceTransform:
    """Training augmentation, then ``spec``: ``flip`` a random horizontal flip (as insightface's arcface_torch),
    ``flip-shift`` also a random translation of up to SHIFT_PIXELS, ``none`` the face as it is."""
    if augment not in AUGMENTS:
        raise FacebenchError(f"--augment {augment!r} is not one of: {', '.join(AUGMENTS)}")
    return FaceTransform(flip=augment != "none", shift=SHIFT_PIXELS if augment == "flip-shift" else 0, spec=spec)


def eval_transform(spec: InputSpec = ARCFACE) -> FaceTransform:
    """Evaluation: no augmentation, only the input normalisation of ``spec``."""
    return FaceTransform(flip=False, spec=spec)
