"""Training and evaluation DataLoaders over any facebench dataset.

``open_dataset`` picks the reader from the path (an insightface ``train.rec`` or a
folder holding one -> RecordDataset, a folder of identity folders ->
IdentityFolderDataset); ``make_loader`` wraps it with sensible workers, pinned memory
when batches go to a GPU, and one-line errors when a worker meets a bad file.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import torch
from torch.utils.data import DataLoader, Dataset

from facebench.data.folders import IdentityFolderDataset
from facebench.data.recordio import RecordDataset
from facebench.data.transforms import eval_transform, train_transform
from facebench.errors import FacebenchError
from facebench.input_spec import ARCFACE, InputSpec

_ERROR_PREFIX = f"{FacebenchError.__module__}.{FacebenchError.__qualname__}: "


def open_dataset(
    path: str | Path,
    *,
    train: bool,
    align: str = "center",
    augment: str = "flip",
    min_images: int = 1,
    max_images: int | None = None,
    skip_bad: bool = False,
    input_spec: InputSpec = ARCFACE,
) -> IdentityFolderDataset | RecordDataset:
    """The dataset at ``path`` with the training (``augment``: facebench.data.transforms.train_transform) or
    evaluation transform, normalised by ``input_spec`` (the model's).

    min_images/max_images/skip_bad apply to identity folders only (a packed .rec was
    filtered and checked when it was packed).
    """
    path = Path(path)
    transform = train_transform(input_spec, augment) if train else eval_transform(input_spec)
    if path.suffix == ".rec" or (path.is_dir() and (path / "train.rec").is_file()):
        return RecordDataset(path, transform=transform, align=align)
    if path.is_dir():
        return IdentityFolderDataset(path, transform=transform, align=align, min_images=min_images,
                                     max_images=max_images, skip_bad=skip_bad)
    raise FacebenchError(
        f"{path}: not a dataset; give a folder of identity folders (root/<identity>/<image>), "
        "an insightface train.rec, or a folder holding train.rec + train.idx"
    )


def default_workers() -> int:
    """Loader worker processes: the usable cores minus one for the training process, 0..8."""
    from facebench.device import usable_cores

    return max(0, min(8, usable_cores() - 1))


class FaceLoader(DataLoader):
    """A DataLoader whose worker errors reach the user as the one-line FacebenchError they were.

    torch re-raises a worker's exception with the worker's whole traceback in its message;
    this keeps only the original message.
    """

    def __iter__(self) -> Iterator:
        batches = super().__iter__()
        while True:
            try:
                batch = next(batches)
            except StopIteration:
                return
            except FacebenchError as exc:
                lines = [line for line in str(exc).splitlines() if line.startswith(_ERROR_PREFIX)]
                if not lines:
                    raise
                raise FacebenchError(lines[-1][len(_ERROR_PREFIX):]) from None
            yield batch


def make_loader(
    dataset: Dataset,
    *,
    batch_size: int,
    train: bool,
    workers: int | None = None,
    device: torch.device | str = "cpu",
    seed: int = 0,
) -> FaceLoader:
    """Batches for training (shuffled with ``seed``, last partial batch dropped) or evaluation
    (in order, all samples). Memory is pinned when the batches go to a CUDA device."""
    workers = default_workers() if workers is None else workers
    return FaceLoader(
        dataset,
        batch_size=batch_size,
        shuffle=train,
        drop_last=train,
        num_workers=workers,
        pin_memory=torch.device(device).type == "cuda",
        generator=torch.Generator().manual_seed(seed),
    )
