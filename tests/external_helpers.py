"""A stand-in external model for tests: the dlib code paths (verify, profile, distill, bench, report) without dlib.

Its embedding is an image's mean RGB colour in [0, 1]: mirror-invariant, cheap, and
recomputable from a training crop, so tests can check that each step's teacher rows belong
to the images of that step.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pytest

from facebench.external import ExternalModel
from facebench.external.registry import _EXTERNAL, ExternalSpec

COLOUR = "colour-test"


class MeanColour(ExternalModel):
    """3-d embedding = mean RGB of the stored image, not normalised (see the module docstring)."""

    name, embedding_size, source, size_mb = COLOUR, 3, "test stand-in", 0.0

    def __init__(self, weights_file: Path) -> None:
        self.weights_file = weights_file
        self.embedded: list[str] = []  # every image it was asked to embed, in order
        self.flips: list[bool] = []  # the flip argument of each embed_images call

    def embed_images(self, images: Sequence[str | bytes], *, flip: bool = True, progress: bool = True,
                     description: str = "embedding") -> np.ndarray:
        import cv2

        self.flips.append(flip)
        self.embedded += [str(image) for image in images]
        rows = [cv2.cvtColor(cv2.imread(str(image)), cv2.COLOR_BGR2RGB).reshape(-1, 3).mean(axis=0) for image in images]
        return np.asarray(rows, np.float32) / 255.0

    def time_embedding(self, batch_size: int, *, warmup: int, iters: int,
                       on_iter: Callable[[], None] | None = None) -> np.ndarray:
        crops = np.zeros((batch_size, 112, 112, 3), np.uint8)
        times = []
        for k in range(warmup + iters):
            start = time.perf_counter()
            crops.reshape(batch_size, -1, 3).mean(axis=1)
            if k >= warmup:
                times.append((time.perf_counter() - start) * 1e3)
            if on_iter:
                on_iter()
        return np.asarray(times)

    def settings(self) -> dict[str, object]:
        return {"device": "cpu", "dtype": "float32", "threads": 1, "batch_size": 1}


def register_colour(monkeypatch: pytest.MonkeyPatch, folder: Path) -> MeanColour:
    """Register a MeanColour (weights file under ``folder``) as the external model COLOUR for one test."""
    weights = folder / "colour.weights"
    weights.write_bytes(b"stand-in weights")
    model = MeanColour(weights)
    monkeypatch.setitem(_EXTERNAL, COLOUR, ExternalSpec(COLOUR, "test stand-in", 3, lambda: model))
    return model
