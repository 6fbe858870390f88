"""Embed a list of face images with a model: batched, no autograd, optional flip TTA.

Each image in the list is decoded (``facebench.data.load_face``), normalised by the model's
own input spec (``facebench.input_spec``) and embedded once; callers pass unique images
(``PairSet.images`` already is) and index the result. With ``flip`` the embedding is
model(img) + model(horizontally flipped img), then L2-normalised, as insightface reports
"Accuracy-Flip". ``precision`` casts weights and input as ``profile --precision`` does
(default: fp16 on CUDA, fp32 on a CPU), so a variant's accuracy is measured the way its
latency is; a deployed file runs in its own precision. On CUDA decoding runs in DataLoader
worker processes; on a CPU it stays in the main process, since torch's intra-op threads
already use every core for the forward.
"""

from __future__ import annotations

import copy
import os
from collections.abc import Sequence

import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facebench.data.degrade import Degradation
from facebench.deploy import DeployedModel
from facebench.device import check_precision
from facebench.errors import FacebenchError
from facebench.external import ExternalModel
from facebench.input_spec import model_input_spec

MAX_WORKERS = 8  # decoding processes on CUDA; JPEG decode + crop keeps a GPU busy with a few


class _FaceImages(Dataset):
    """Decoded 112x112 faces (degraded when asked); a bad image yields its error message instead of raising in a
    worker."""

    def __init__(self, images: Sequence[str | bytes], align: str, degrade: Degradation | None = None) -> None:
        self.images = images
        self.align = align
        self.degrade = degrade

    def __len__(self) -> int:
        return len(self.images)

    def __getitem__(self, index: int) -> np.ndarray | str:
        from facebench.data import load_face

        try:
            face = load_face(self.images[index], self.align)
        except FacebenchError as exc:
            return str(exc)
        return self.degrade(face, self.images[index]) if self.degrade is not None else face


def _collate(items: list[np.ndarray | str]) -> np.ndarray | str:
    """Stack a batch of faces (N, 112, 112, 3) uint8, or pass on the first error message."""
    for item in items:
        if isinstance(item, str):
            return item
    return np.stack(items)


def default_precision(device: torch.device) -> str:
    """fp16 on CUDA (as insightface evaluates), fp32 on a CPU."""
    return "fp16" if device.type == "cuda" else "fp32"


def default_workers(device: torch.device) -> int:
    """DataLoader workers for decoding: several on CUDA, none on a CPU (see module docstring)."""
    return min(MAX_WORKERS, os.cpu_count() or 1) if device.type == "cuda" else 0


@torch.inference_mode()
def embed_images(
    model: nn.Module | ExternalModel,
    images: Sequence[str | bytes],
    *,
    align: str = "center",
    device: torch.device | str = "cpu",
    batch_size: int = 128,
    flip: bool = True,
    precision: str | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    description: str = "embedding",
    degrade: Degradation | None = None,
) -> np.ndarray:
    """(N, D) float32 L2-normalised embeddings of ``images`` (paths or encoded bytes), in order.

    A missing, corrupt or unalignable image raises FacebenchError naming it. An external
    model (facebench.external) embeds with its own preprocessing and device;
    ``align``, ``device``, ``batch_size`` and ``num_workers`` do not apply to it, nor ``degrade``.
    ``degrade``: applied to each aligned crop (facebench.data.degrade), its noise seeded by the image.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    if isinstance(model, ExternalModel):
        if degrade is not None:
            raise ValueError(f"{model.name} aligns its own faces: its crops cannot be degraded")  # verify refuses it
        return model.embed_images(images, flip=flip, progress=progress, description=description)
    device = torch.device(device)
    workers = default_workers(device) if num_workers is None else num_workers
    loader = DataLoader(
        _FaceImages(images, align, degrade),
        batch_size=batch_size,
        shuffle=False,
        num_workers=workers,
        collate_fn=_collate,
        pin_memory=device.type == "cuda",
    )
    spec = model_input_spec(model)
    dtype = torch.float32
    if not isinstance(model, DeployedModel):
        dtype = check_precision(device, precision or default_precision(device))
    model = model.eval().to(device)
    if dtype != torch.float32:  # a cast copy: the caller's model (a training run's, say) stays fp32
        model = copy.deepcopy(model).to(dtype=dtype)
    chunks: list[np.ndarray] = []
    columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, transient=True, disable=not progress) as bar:
        task = bar.add_task(description, total=len(images))
        for batch in loader:
            if isinstance(batch, str):
                raise FacebenchError(batch)
            x = spec.to_tensor(batch).to(device, dtype, non_blocking=True)
            if flip:
                x = torch.cat([x, x.flip(3)])
            out = model(x).float()
            if flip:
                out = out[: len(batch)] + out[len(batch) :]
            chunks.append(torch.nn.functional.normalize(out, dim=1).cpu().numpy())
            bar.advance(task, len(batch))
    if not chunks:
        raise FacebenchError("no images to embed")
    return np.concatenate(chunks)


class CachedEmbedder:
    """``embed_images`` with one model's settings and a memory of what it embedded: each (image, degradation)
    is embedded once per run, so a pairs set and a folder set over the same photos cost one pass."""

    def __init__(self, model: nn.Module | ExternalModel, **settings: object) -> None:
        self.model = model
        self.settings = settings  # embed_images' keyword arguments (align, device, batch_size, flip, ...)
        self.cache: dict[tuple[str | bytes, str | None], np.ndarray] = {}

    def __call__(self, images: Sequence[str | bytes], *, description: str = "embedding",
                 degrade: Degradation | None = None) -> np.ndarray:
        """(N, D) embeddings of ``images`` in order, embedding only those not seen with this ``degrade``."""
        spec = degrade.spec if degrade is not None else None
        missing = list(dict.fromkeys(image for image in images if (image, spec) not in self.cache))
        if missing:
            emb = embed_images(self.model, missing, description=description, degrade=degrade, **self.settings)
            self.cache.update({(image, spec): row for image, row in zip(missing, emb, strict=True)})
        return np.stack([self.cache[image, spec] for image in images])
