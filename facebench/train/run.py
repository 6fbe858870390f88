"""``facebench train`` as a library call: a zoo model + margin head on a dataset, through the engine."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from rich.console import Console
from torch import nn
from torch.utils.data import Dataset

from facebench.errors import FacebenchError
from facebench.runfolder import CHECKPOINT, CONFIG, RunFolder
from facebench.runlock import FolderLock
from facebench.train.config import RESUME_OVERRIDABLE, TrainConfig
from facebench.train.engine import (
    MODEL_KEY,
    Engine,
    FitResult,
    Objective,
    RunSpec,
    check_config,
)


@dataclass
class Plan:
    """What a training method (``facebench distill``'s) makes of the plain student objective.

    ``objectives[0]`` must hold the student's modules (the plain objective's, plus any it
    adds); ``frozen`` modules (a teacher) are placed on the device in eval mode without
    gradients; ``info`` becomes extra top-level keys of config.json.
    """

    objectives: list[Objective]
    frozen: dict[str, nn.Module] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


# (the plain student objective: model + margin head + margin_loss, the dataset) -> Plan
Method = Callable[[Objective, Dataset], Plan]


@dataclass
class TrainResult:
    """A finished run: its folder, how the loop ended, and the trained modules (unwrapped)."""

    run_dir: Path
    fit: FitResult
    model: nn.Module
    head: nn.Module
    is_main: bool  # rank 0 (or the only process): the one that wrote the run folder


def run_dir_of(config: TrainConfig) -> Path:
    """The run folder: --out, else runs/<model>."""
    return Path(config.out) if config.out else Path("runs") / config.model


def resume_config(run_dir: str | Path, overrides: Mapping[str, Any], cls: type[TrainConfig] = TrainConfig) -> TrainConfig:
    """The config (a ``cls``) a run folder was started with; ``overrides`` (options given again) must agree
    with it, except where the run executes (device, workers, threads)."""
    run_dir = Path(run_dir)
    folder = RunFolder(run_dir)
    if not folder.has(CHECKPOINT) or not folder.has(CONFIG):
        raise FacebenchError(f"--resume {run_dir}: not a run folder with {CONFIG} and {CHECKPOINT}")
    saved = folder.read_config()["config"]
    known = {f.name for f in fields(cls)}
    config = cls(**{k: v for k, v in saved.items() if k in known})
    for key, value in overrides.items():
        if key in RESUME_OVERRIDABLE:
            setattr(config, key, value)
        elif key not in ("out",) and value != getattr(config, key):
            raise FacebenchError(
                f"--resume {run_dir}: the run was started with {key}={getattr(config, key)!r}, not {value!r}; "
                "a resumed run continues exactly, so drop that option (or start a new run)"
            )
    config.out = str(run_dir)
    return config


def check_train_config(config: TrainConfig) -> None:
    """Refuse bad options before any data is read or process group joined."""
    from facebench.data.images import check_align
    from facebench.data.transforms import train_transform
    from facebench.external import refuse_external
    from facebench.models import model_spec
    from facebench.models.heads import head_spec

    if not config.model:  # distill checks its --student first (check_distill_config)
        raise FacebenchError("give --model NAME (a zoo model; facebench models lists them), or --resume RUN_DIR")
    if not config.data:
        raise FacebenchError("give --data DIR|train.rec (identity folders or an insightface train.rec), or "
                             "--resume RUN_DIR")
    refuse_external(config.model)
    model_spec(config.model)
    head_spec(config.head)
    check_align(config.align)
    train_transform(augment=config.augment)  # an unknown --augment: one line
    check_config(config)
    if config.embedding_size < 1:
        raise FacebenchError(f"--embedding-size {config.embedding_size}: must be at least 1")


def train(
    config: TrainConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callable[[Engine, int], None]] = (),
    console: Console | None = None,
    progress: bool = True,
    method: Method | None = None,
) -> TrainResult:
    """Train ``config.model`` with ``config.head`` on ``config.data`` into the run folder.

    Works alone or in each process of a torchrun job. Without ``resume`` a folder that
    already holds a checkpoint is refused rather than overwritten. ``method`` (distillation)
    turns the plain objective into a ``Plan``, called after the dataset is open and the
    student built, so both are identical to plain training under the same seed.
    """
    from facebench.data.loaders import open_dataset
    from facebench.eval.verify import load_pair_sets
    from facebench.models import create_model, model_spec
    from facebench.models.heads import create_head
    from facebench.train.distributed import init_distributed, launched_as_main, shutdown
    from facebench.train.losses import HEAD_KEY, margin_loss
    from facebench.train.state import seed_everything
    from facebench.train.validate import PairsValidator

    check_train_config(config)
    run_dir = run_dir_of(config)
    # rank 0 alone holds the run folder's lock (it alone writes there); locking also removes stale temp files
    lock = FolderLock(run_dir, "--resume" if resume else "--out") if launched_as_main() else contextlib.nullcontext()
    with lock:
        if not resume and (run_dir / CHECKPOINT).exists():
            raise FacebenchError(f"{run_dir} already holds a run; continue it with --resume {run_dir} or choose "
                                 "another --out")
        val_sets = load_pair_sets(config.val, config.val_folds, "--val-folds") if config.val else []
        info = init_distributed(config.device)
        try:
            input_spec = model_spec(config.model).input_spec
            dataset = open_dataset(config.data, train=True, align=config.align, augment=config.augment,
                                   input_spec=input_spec)
            seed_everything(config.seed)  # same initial weights in every process (DDP broadcasts rank 0's anyway)
            model = create_model(config.model, embedding_size=config.embedding_size)
            head = create_head(config.head, config.embedding_size, dataset.num_classes, scale=config.scale,
                               margin=config.margin)
            objective = Objective(
                "main", {MODEL_KEY: model, HEAD_KEY: head}, margin_loss, optimizer=config.optimizer,
                lr=config.resolved_lr(), momentum=config.momentum, weight_decay=config.resolved_weight_decay(),
            )  # fmt: skip
            plan = method(objective, dataset) if method is not None else Plan([objective])
            validator = PairsValidator(
                val_sets, run_dir, config.model, align=config.align, device=info.device,
                batch_size=config.val_batch_size, flip=config.val_flip,
            ) if val_sets else None  # fmt: skip
            facts = {"num_classes": dataset.num_classes, "num_images": len(dataset), "head": repr(head),
                     "lr": config.resolved_lr(), "weight_decay": config.resolved_weight_decay(), **plan.info}
            run = RunSpec(run_dir, config.model, config.embedding_size, asdict(config), facts)
            engine = Engine(config, plan.objectives, dataset, run, info, frozen=plan.frozen, validator=validator,
                            callbacks=callbacks, console=console, progress=progress)
            return TrainResult(run_dir, engine.fit(resume=resume), model, head, info.is_main)
        finally:
            shutdown(info)
