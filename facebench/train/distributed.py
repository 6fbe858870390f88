"""Process-group set-up for ``torchrun``: one process per device, DDP over NCCL (GPU) or gloo (CPU).

``torchrun --nproc_per_node=K [--nnodes=N ...] -m facebench train ...`` sets RANK,
WORLD_SIZE and LOCAL_RANK in each process's environment; without them the run is a single
process and nothing here touches ``torch.distributed``. Nothing happens at import time.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist

from facebench.device import resolve_device
from facebench.errors import FacebenchError


@dataclass(frozen=True)
class DistInfo:
    """Where this process stands in the job."""

    rank: int
    world_size: int
    local_rank: int
    device: torch.device

    @property
    def is_main(self) -> bool:
        """Rank 0 logs, validates and writes the run folder."""
        return self.rank == 0

    @property
    def distributed(self) -> bool:
        return self.world_size > 1


def launched_as_main() -> bool:
    """Whether this process is rank 0 as torchrun numbers them (RANK), or the only process; before joining."""
    return int(os.environ.get("RANK", "0")) == 0


def init_distributed(device: str) -> DistInfo:
    """Resolve ``--device`` and, under torchrun, join the process group (NCCL on CUDA, gloo on CPU).

    Under torchrun each process takes the GPU of its LOCAL_RANK.
    """
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    resolved = resolve_device(device)
    if world_size == 1:
        return DistInfo(0, 1, 0, resolved)
    rank, local_rank = int(os.environ["RANK"]), int(os.environ["LOCAL_RANK"])
    if resolved.type == "cuda":
        if local_rank >= torch.cuda.device_count():
            raise FacebenchError(
                f"LOCAL_RANK {local_rank} but only {torch.cuda.device_count()} GPU(s) visible; "
                "use --nproc_per_node at most the GPU count"
            )
        resolved = torch.device("cuda", local_rank)
        torch.cuda.set_device(resolved)
    if not dist.is_initialized():
        backend = "nccl" if resolved.type == "cuda" else "gloo"
        dist.init_process_group(backend, device_id=resolved if resolved.type == "cuda" else None)
    return DistInfo(rank, world_size, local_rank, resolved)


def shutdown(info: DistInfo) -> None:
    """Leave the process group (a no-op for a single process)."""
    if info.distributed and dist.is_initialized():
        dist.destroy_process_group()


def barrier(info: DistInfo) -> None:
    if info.distributed:
        dist.barrier()


def all_reduce_mean(info: DistInfo, values: torch.Tensor) -> torch.Tensor:
    """The mean of ``values`` over processes (a copy; NaN on any rank gives NaN on all)."""
    if not info.distributed:
        return values
    summed = values.clone()
    dist.all_reduce(summed)
    return summed / info.world_size


def broadcast_buffers(info: DistInfo, module: torch.nn.Module) -> None:
    """Give every process rank 0's buffers (BN running statistics).

    DDP broadcasts them before each forward, so after the last step each rank still holds
    its own statistics; this makes the processes agree with the checkpoint rank 0 wrote.
    """
    if info.distributed:
        for buffer in module.buffers():
            dist.broadcast(buffer, src=0)


def gather_objects(info: DistInfo, value: Any) -> list[Any]:
    """Every process's ``value`` (picklable), in rank order, on every process."""
    if not info.distributed:
        return [value]
    out: list[Any] = [None] * info.world_size
    dist.all_gather_object(out, value)
    return out


def broadcast_object(info: DistInfo, value: Any) -> Any:
    """Rank 0's ``value`` on every process."""
    if not info.distributed:
        return value
    box = [value]
    dist.broadcast_object_list(box, src=0)
    return box[0]
