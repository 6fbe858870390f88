"""Training state inside the shared checkpoint format, and the RNG states it carries.

``checkpoint.pt`` is an ordinary facebench checkpoint (``facebench.checkpoint``): the
model's weights are its ``state_dict``, so ``facebench verify --model RUN_DIR`` reads it
like any other. What a resumed run needs besides lives under ``extra["training"]``:
step, epoch and position in the epoch, the other trained modules (the margin head, a
discriminator), optimisers, schedules, AMP scalers, the best validation score and the RNG
states of every process. All of it is tensors and plain values (``weights_only`` loading).
"""

from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from facebench.checkpoint import load_checkpoint
from facebench.errors import FacebenchError
from facebench.runfolder import CHECKPOINT


def seed_everything(seed: int) -> None:
    """Seed Python's, NumPy's and torch's (CPU and CUDA) global generators."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def capture_rng() -> dict[str, Any]:
    """This process's generator states as plain values and tensors."""
    kind, keys, pos, has_gauss, cached = np.random.get_state()
    return {
        "python": random.getstate(),
        "numpy": [kind, keys.tolist(), int(pos), int(has_gauss), float(cached)],
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
    }


def restore_rng(state: dict[str, Any]) -> None:
    """Put back the states ``capture_rng`` returned."""
    version, internal, gauss = state["python"]
    random.setstate((version, tuple(internal), gauss))
    kind, keys, pos, has_gauss, cached = state["numpy"]
    np.random.set_state((kind, np.asarray(keys, dtype=np.uint32), pos, has_gauss, cached))
    torch.set_rng_state(state["torch"])
    if state["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def load_training_checkpoint(run_dir: str | Path) -> dict[str, Any]:
    """``run_dir/checkpoint.pt`` with its training state; FacebenchError when it cannot be resumed."""
    run_dir = Path(run_dir)
    path = run_dir / CHECKPOINT
    if not run_dir.is_dir():
        raise FacebenchError(f"--resume {run_dir}: no such run folder")
    if not path.is_file():
        raise FacebenchError(f"--resume {run_dir}: no {CHECKPOINT} in it; the run stopped before its first "
                             "checkpoint, start it again without --resume")
    checkpoint = load_checkpoint(path)
    if "training" not in checkpoint.get("extra", {}):
        raise FacebenchError(f"{path}: holds weights only, no training state to resume from")
    return checkpoint
