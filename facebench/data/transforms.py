"""What a dataset does to a 112x112 face before batching: augmentation, then the model's input spec."""

from __future__ import annotations

import numpy as np
import torch

from facebench.input_spec import ARCFACE, InputSpec


class FaceTransform:
    """uint8 RGB 112x112 face -> normalised CHW tensor; with ``flip``, mirrored with probability 0.5.

    Uses torch's RNG, which DataLoader seeds differently in each worker, so workers do
    not repeat each other's flips.
    """

    def __init__(self, *, flip: bool, spec: InputSpec = ARCFACE) -> None:
        self.flip = flip
        self.spec = spec

    def __call__(self, face: np.ndarray) -> torch.Tensor:
        if self.flip and torch.rand(()) < 0.5:
            face = face[:, ::-1]
        return self.spec.to_tensor(face)

    def __repr__(self) -> str:
        return f"FaceTransform(flip={self.flip}, spec={self.spec.describe()!r})"


def train_transform(spec: InputSpec = ARCFACE) -> FaceTransform:
    """Training augmentation: random horizontal flip (as insightface's arcface_torch), then ``spec``."""
    return FaceTransform(flip=True, spec=spec)


def eval_transform(spec: InputSpec = ARCFACE) -> FaceTransform:
    """Evaluation: no augmentation, only the input normalisation of ``spec``."""
    return FaceTransform(flip=False, spec=spec)
