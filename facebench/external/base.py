"""External models: pretrained face models run by another library, used like zoo models.

An external model (registered with ``facebench.external.registry.register_external``)
embeds whole images with its own preprocessing (detector, landmarks, crop), so it takes
image paths or encoded bytes, never the 112x112 tensors of ``to_model_input``. It has no
``forward_features``, no trainable weights and no parameter or MAC count facebench can
measure: it can be verified, profiled (latency, memory, file size) and used as a frozen
distillation teacher whose embeddings are computed once per image.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np


class ExternalModel(ABC):
    """The calls verify, profile and distill make on an external model."""

    name: str
    embedding_size: int
    source: str  # where the weights come from, for result labels
    size_mb: float  # its network's file on disk, 1e6 bytes
    weights_file: Path  # that file (a distillation run records its SHA-256)

    @abstractmethod
    def embed_images(
        self,
        images: Sequence[str | bytes],
        *,
        flip: bool = True,
        progress: bool = True,
        description: str = "embedding",
    ) -> np.ndarray:
        """(N, embedding_size) float32 L2-normalised embeddings of ``images`` (paths or encoded bytes), in order."""

    @abstractmethod
    def time_embedding(
        self, batch_size: int, *, warmup: int, iters: int, on_iter: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Milliseconds of each of ``iters`` timed network passes over ``batch_size`` aligned face crops."""

    @abstractmethod
    def settings(self) -> dict[str, object]:
        """Scalars recorded beside its results: device, dtype, threads, preprocessing, counters."""


def is_external(model: object) -> bool:
    """True for an external model, False for a zoo nn.Module."""
    return isinstance(model, ExternalModel)
