"""Sample order and augmentation randomness that a resumed run reproduces exactly.

- ``ResumableSampler`` is torch's ``DistributedSampler`` (each epoch a permutation seeded
  by seed + epoch, rank r takes every world_size-th index) that can start part-way
  through an epoch, at a given batch.
- Each index comes with an augmentation seed, a pure function of (seed, epoch, index);
  ``SeededSamples`` seeds torch's RNG with it around the dataset's ``__getitem__``.
  A sample's random flip therefore depends on neither the worker that loads it, nor the
  number of workers or processes, nor where a run was interrupted.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import islice
from typing import Any

import torch
from torch.utils.data import Dataset, DistributedSampler

_SEED_MASK = (1 << 63) - 1


def augmentation_seed(seed: int, epoch: int, index: int) -> int:
    """The RNG seed for sample ``index`` in ``epoch`` (large odd multipliers mix the three)."""
    return (seed * 0x9E3779B97F4A7C15 + epoch * 0xBF58476D1CE4E5B9 + index * 0x94D049BB133111EB) & _SEED_MASK


class ResumableSampler(DistributedSampler):
    """DistributedSampler yielding (index, augmentation seed), startable at any batch of an epoch.

    ``batch_size`` is per process; ``set_epoch(epoch, start_batch)`` skips the first
    ``start_batch`` batches of this process's share of ``epoch``.
    """

    def __init__(self, dataset: Dataset, *, batch_size: int, rank: int, world_size: int, seed: int) -> None:
        super().__init__(dataset, num_replicas=world_size, rank=rank, shuffle=True, seed=seed, drop_last=True)
        self.batch_size = batch_size
        self.start_batch = 0

    @property
    def batches_per_epoch(self) -> int:
        """Full batches of this process per epoch (the partial last batch is dropped)."""
        return self.num_samples // self.batch_size

    def set_epoch(self, epoch: int, start_batch: int = 0) -> None:
        super().set_epoch(epoch)
        self.start_batch = start_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:  # type: ignore[override]
        start = self.start_batch * self.batch_size
        for index in islice(super().__iter__(), start, None):
            yield index, augmentation_seed(self.seed, self.epoch, index)

    def __len__(self) -> int:
        return self.num_samples - self.start_batch * self.batch_size


class SeededSamples(Dataset):
    """``dataset[index]`` computed with torch's RNG seeded by the sampler's augmentation seed.

    The CPU generator's state is restored afterwards, so loading in the main process
    (workers=0) leaves the training RNG untouched. (Direct ``get_state``/``set_state`` of
    the default generator: about 9 us a sample, where ``torch.random.fork_rng`` takes over 100.)
    """

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, key: tuple[int, int]) -> tuple[Any, ...]:
        """(*dataset[index], index): the index lets a teacher look up what it computed for that image."""
        index, seed = key
        generator = torch.default_generator
        saved = generator.get_state()
        generator.manual_seed(seed)
        try:
            return (*self.dataset[index], index)
        finally:
            generator.set_state(saved)
