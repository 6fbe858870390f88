"""The one training loop behind ``facebench train`` and ``facebench distill``.

A method plugs in as a list of ``Objective``s, each one optimiser, the modules it trains
and a loss function returning named loss terms; plus ``frozen`` modules (a teacher) that
the loss functions may call. At every step, for each objective in list order:

    lr = schedule(step); terms = loss(step) under autocast (inside DDP when distributed);
    zero grads; backward of sum(terms) (scaled for fp16); clip; optimiser step.

``Step.cache`` carries values from one objective to the next within a step, so an
adversarial method computes the student's feature maps once, trains the student against
a discriminator (objective 1), then the discriminator on the detached maps (objective 2).
An objective's loss may call modules of other objectives and frozen modules; their
gradients are ignored (each optimiser zeroes its own gradients right before its backward).

Around the step: DDP (one wrapper per objective; the loss runs inside its forward, so any
method of the modules may be called), a resumable sampler, per-step LR, AMP (bf16/fp16,
CUDA only), channels_last, gradient clipping, metrics.csv (means over ``log_every``
steps, averaged over processes), a non-finite loss check at each log row, checkpoints,
in-loop validation with best.pt, a Rich progress bar and TensorBoard when installed.
Rank 0 alone writes the run folder. On a CPU, a run killed and resumed from its
checkpoint ends bit-identical to an uninterrupted one (same thread count). SIGTERM (a
scheduler, ``docker stop``) to a one-process run finishes the step, checkpoints it, then
stops (``StopAtStepEnd``).
"""

from __future__ import annotations

import math
import os
import signal
import threading
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol

import torch
from rich.console import Console
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from torch.utils.data import Dataset

from facebench.checkpoint import save_checkpoint
from facebench.data.loaders import FaceLoader, default_workers
from facebench.errors import FacebenchError
from facebench.fileio import check_free_space
from facebench.runfolder import BEST, CHECKPOINT, CONFIG, METRICS, VAL_LOG, RunFolder
from facebench.train.config import AMP_DTYPES, OPTIMIZERS, SCHEDULES, EngineConfig
from facebench.train.distributed import (
    DistInfo,
    all_reduce_mean,
    barrier,
    broadcast_buffers,
    gather_objects,
)
from facebench.train.logs import CsvLog, TensorBoard
from facebench.train.sampler import ResumableSampler, SeededSamples
from facebench.train.schedule import LRSchedule
from facebench.train.state import (
    capture_rng,
    load_training_checkpoint,
    restore_rng,
    seed_everything,
)

MODEL_KEY = "model"  # the module saved as the checkpoint's model (verified, profiled, distilled from)


class StopAtStepEnd:
    """SIGTERM while one process trains: finish the step, write checkpoint.pt at it, then stop as the handler that
    was there would (facebench's CLI: one line, exit 143), so a run a scheduler stops resumes where it stopped.

    During validation, or with several processes (whose steps would have to agree on where to stop), the signal
    acts at once, as Ctrl-C does: the last checkpoint written is the one to resume from.
    """

    def __init__(self, enabled: bool) -> None:
        self.enabled = (enabled and threading.current_thread() is threading.main_thread()
                        and signal.getsignal(signal.SIGTERM) != signal.SIG_IGN)
        self.requested: tuple[int, Any] | None = None
        self.immediate = False  # validating: stop at once
        self._pid = os.getpid()
        self._previous: Any = None

    def __enter__(self) -> StopAtStepEnd:
        if self.enabled:
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self.enabled:
            signal.signal(signal.SIGTERM, self._previous)
            self.enabled = False

    def _handle(self, signum: int, frame: Any) -> None:
        if os.getpid() != self._pid:  # a forked data loader worker: die quietly, as by default
            signal.signal(signal.SIGTERM, signal.SIG_DFL)
            os.kill(os.getpid(), signal.SIGTERM)
            return
        # the same SIGTERM sent to the process group ends the loader's workers; torch's SIGCHLD handler would raise
        signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        self.requested = (signum, frame)
        if self.immediate:
            self.deliver()

    def deliver(self) -> None:
        """Hand the signal to the handler that was there before (Terminated from facebench's CLI)."""
        signum, frame = self.requested or (signal.SIGTERM, None)
        previous = self._previous
        self.__exit__()
        self.requested = None
        if callable(previous):
            previous(signum, frame)  # returns only if that handler lets the run go on
        elif previous == signal.SIG_DFL:
            signal.raise_signal(signum)


class Step:
    """What a loss function sees at one training step."""

    def __init__(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                 modules: Mapping[str, nn.Module], step: int, epoch: int) -> None:
        self.images = images  # (N, 3, 112, 112) on the device
        self.labels = labels  # (N,) int64 on the device
        self.indices = indices  # (N,) int64 on the CPU: each image's index in the training dataset
        self.modules = modules  # every module by name: all objectives' and the frozen ones (unwrapped)
        self.step = step  # 0-based global step
        self.epoch = epoch
        self.cache: dict[str, Any] = {}  # shared by the objectives of this step


LossFn = Callable[[Step], dict[str, torch.Tensor]]


@dataclass
class Objective:
    """One optimiser, the modules it trains, and the loss terms it minimises (their sum).

    Loss-term names must be unique across objectives: each becomes a ``loss_<term>``
    column of metrics.csv.
    """

    name: str
    modules: dict[str, nn.Module]
    loss: LossFn
    optimizer: str = "sgd"
    lr: float = 0.1
    momentum: float = 0.9
    weight_decay: float = 5e-4


class _ObjectiveModule(nn.Module):
    """An objective's modules under one parent whose forward is the loss (what DDP wraps)."""

    def __init__(self, objective: Objective) -> None:
        super().__init__()
        self.parts = nn.ModuleDict(objective.modules)
        self.loss = objective.loss

    def forward(self, step: Step) -> dict[str, torch.Tensor]:
        return self.loss(step)


class Validator(Protocol):
    """In-loop validation: scores ``model`` and returns flat metrics with a ``score`` (higher is better)."""

    def __call__(self, model: nn.Module, step: int, epoch: int) -> dict[str, float]: ...


@dataclass
class RunSpec:
    """What the run folder records: where it is and what the checkpoints describe."""

    run_dir: Path
    model_name: str  # zoo name of the MODEL_KEY module
    embedding_size: int
    config: dict[str, Any]  # the resolved config, written to config.json and into checkpoints
    info: dict[str, Any] = field(default_factory=dict)  # dataset facts etc., written to config.json


@dataclass
class FitResult:
    """How a run ended."""

    step: int
    epoch: int
    last_metrics: dict[str, float]
    best: dict[str, Any] | None  # {"score", "step"} of the best validation so far
    wall_s: float


class TrainingDiverged(FacebenchError):
    """The loss became NaN or infinite."""


def make_optimizer(objective: Objective, params: list[nn.Parameter]) -> torch.optim.Optimizer:
    """SGD (momentum, weight decay, as insightface) or AdamW for ``params``."""
    if objective.optimizer == "sgd":
        return torch.optim.SGD(params, lr=objective.lr, momentum=objective.momentum,
                               weight_decay=objective.weight_decay)
    if objective.optimizer == "adamw":
        return torch.optim.AdamW(params, lr=objective.lr, weight_decay=objective.weight_decay)
    raise FacebenchError(f"optimizer {objective.optimizer!r} is not one of: {', '.join(OPTIMIZERS)}")


def resolve_amp(config: EngineConfig, device: torch.device) -> torch.dtype | None:
    """The autocast dtype, or None for float32 (CPU; or --no-amp)."""
    enabled = config.amp if config.amp is not None else device.type == "cuda"
    if not enabled:
        return None
    if device.type != "cuda":
        raise FacebenchError("--amp needs a CUDA device; CPU training runs in float32 (drop --amp)")
    name = config.amp_dtype or ("bf16" if torch.cuda.is_bf16_supported() else "fp16")
    if name not in AMP_DTYPES:
        raise FacebenchError(f"--amp-dtype {name!r} is not one of: {', '.join(AMP_DTYPES)}")
    return torch.bfloat16 if name == "bf16" else torch.float16


def _load_weights(module: nn.Module, state: Mapping[str, torch.Tensor] | None, source: Path, name: str) -> None:
    """Put a checkpoint's saved state into ``module``; a missing or mismatched one -> one line naming the file."""
    try:
        if state is None:
            raise RuntimeError("none saved")
        module.load_state_dict(state)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0].rstrip(":")
        raise FacebenchError(f"{source}: its {name} weights do not fit this run's ({first}); resume with the "
                             "data and options the run was started with, or start a new run without --resume") from None


def check_config(config: EngineConfig) -> None:
    """Refuse impossible engine options with one line each, before any work."""
    checks = [
        (config.epochs >= 1, f"--epochs {config.epochs}: must be at least 1"),
        (config.batch_size >= 1, f"--batch-size {config.batch_size}: must be at least 1"),
        (config.optimizer in OPTIMIZERS, f"--optimizer {config.optimizer!r} is not one of: {', '.join(OPTIMIZERS)}"),
        (config.schedule in SCHEDULES, f"--schedule {config.schedule!r} is not one of: {', '.join(SCHEDULES)}"),
        (config.resolved_lr() > 0, f"--lr {config.lr}: must be positive"),
        (config.warmup_epochs >= 0, f"--warmup-epochs {config.warmup_epochs}: must be >= 0"),
        (config.log_every >= 1, f"--log-every {config.log_every}: must be at least 1"),
        (config.checkpoint_every >= 0, f"--checkpoint-every {config.checkpoint_every}: must be >= 0"),
        (config.val_every >= 0, f"--val-every {config.val_every}: must be >= 0"),
        (config.clip_grad_norm is None or config.clip_grad_norm > 0,
         f"--clip-grad-norm {config.clip_grad_norm}: must be positive"),
        (config.amp_dtype is None or config.amp_dtype in AMP_DTYPES,
         f"--amp-dtype {config.amp_dtype!r} is not one of: {', '.join(AMP_DTYPES)}"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise FacebenchError(message)


class Engine:
    """Trains ``objectives`` on ``dataset`` into ``run.run_dir`` (see the module docstring)."""

    def __init__(
        self,
        config: EngineConfig,
        objectives: Sequence[Objective],
        dataset: Dataset,
        run: RunSpec,
        dist_info: DistInfo,
        *,
        frozen: Mapping[str, nn.Module] | None = None,
        validator: Validator | None = None,
        callbacks: Sequence[Callable[[Engine, int], None]] = (),
        console: Console | None = None,
        progress: bool = True,
    ) -> None:
        check_config(config)
        names = [n for o in objectives for n in o.modules] + list(frozen or {})
        if len(set(names)) != len(names) or MODEL_KEY not in objectives[0].modules:
            raise ValueError(f"module names must be unique and objective 0 must hold {MODEL_KEY!r}: {names}")
        self.config = config
        self.objectives = list(objectives)
        self.frozen = dict(frozen or {})
        self.dataset = dataset
        self.run = run
        self.dist = dist_info
        self.validator = validator
        self.callbacks = list(callbacks)
        self.console = console or Console()
        self.show_progress = progress and dist_info.is_main
        self.device = dist_info.device
        self.amp_dtype = resolve_amp(config, self.device)
        self.step = 0
        self.best: dict[str, Any] | None = None
        self.last_checkpoint_step: int | None = None
        self.last_metrics: dict[str, float] = {}

    # ----------------------------------------------------------------- set-up
    @property
    def model(self) -> nn.Module:
        """The model being trained (unwrapped), as saved in checkpoints."""
        return self.objectives[0].modules[MODEL_KEY]

    @property
    def modules(self) -> dict[str, nn.Module]:
        """Every module by name, unwrapped (what ``Step.modules`` holds)."""
        return {**{n: m for o in self.objectives for n, m in o.modules.items()}, **self.frozen}

    def _place_modules(self) -> None:
        memory_format = torch.channels_last if self.config.channels_last else torch.contiguous_format
        for objective in self.objectives:
            for module in objective.modules.values():
                module.to(self.device, memory_format=memory_format).train()
        for module in self.frozen.values():
            module.to(self.device, memory_format=memory_format).eval().requires_grad_(False)

    def _build(self) -> None:
        cfg = self.config
        self._place_modules()
        if self.device.type == "cuda":
            torch.backends.cudnn.benchmark = True  # fastest kernels; bit-exactness is a CPU promise
        self.sampler = ResumableSampler(self.dataset, batch_size=cfg.batch_size, rank=self.dist.rank,
                                        world_size=self.dist.world_size, seed=cfg.seed)
        self.steps_per_epoch = self.sampler.batches_per_epoch
        if self.steps_per_epoch == 0:
            raise FacebenchError(
                f"{self.run.config.get('data', 'the dataset')}: {len(self.dataset)} images give no full batch of "
                f"{cfg.batch_size} per process over {self.dist.world_size} process(es); lower --batch-size"
            )
        self.total_steps = self.steps_per_epoch * cfg.epochs
        self.loader = FaceLoader(
            SeededSamples(self.dataset), batch_size=cfg.batch_size, sampler=self.sampler, drop_last=True,
            num_workers=default_workers() if cfg.workers is None else cfg.workers,
            pin_memory=self.device.type == "cuda",
            generator=torch.Generator().manual_seed(cfg.seed),  # its per-epoch draw leaves the global RNG alone
        )  # fmt: skip
        warmup = round(cfg.warmup_epochs * self.steps_per_epoch)
        self.wrapped: list[nn.Module] = []
        self.optimizers: list[torch.optim.Optimizer] = []
        self.schedules: list[LRSchedule] = []
        self.scalers: list[torch.amp.GradScaler] = []
        self.params: list[list[nn.Parameter]] = []
        for objective in self.objectives:
            holder = _ObjectiveModule(objective)
            if self.dist.distributed:
                ids = [self.device.index] if self.device.type == "cuda" else None
                holder = DistributedDataParallel(holder, device_ids=ids)
            params = [p for m in objective.modules.values() for p in m.parameters() if p.requires_grad]
            self.wrapped.append(holder)
            self.params.append(params)
            self.optimizers.append(make_optimizer(objective, params))
            self.schedules.append(LRSchedule(objective.lr, self.total_steps, warmup, cfg.schedule, cfg.poly_power))
            self.scalers.append(torch.amp.GradScaler(self.device.type, enabled=self.amp_dtype == torch.float16))

    # ------------------------------------------------------------ checkpoints
    def _training_state(self, rng: list[dict[str, Any]]) -> dict[str, Any]:
        return {
            "step": self.step,
            "epoch": self.step // self.steps_per_epoch,
            "batch_in_epoch": self.step % self.steps_per_epoch,
            "steps_per_epoch": self.steps_per_epoch,
            "world_size": self.dist.world_size,
            "modules": {n: {k: v.detach().cpu() for k, v in m.state_dict().items()}
                        for o in self.objectives for n, m in o.modules.items() if n != MODEL_KEY},
            "optimizers": [o.state_dict() for o in self.optimizers],
            "schedules": [s.state_dict() for s in self.schedules],
            "scalers": [s.state_dict() for s in self.scalers],
            "best": self.best,
            "rng": rng,
        }  # fmt: skip

    def checkpoint_bytes(self) -> int:
        """About the disk the first checkpoints take: checkpoint.pt (the trained modules' weights and buffers with
        up to two optimiser states per parameter, as AdamW keeps; SGD's momentum is one) plus best.pt (the model's
        weights) when validating."""
        def size(module: nn.Module) -> int:
            return sum(t.numel() * t.element_size() for t in (*module.parameters(), *module.buffers()))

        trained = sum(size(m) for o in self.objectives for m in o.modules.values())
        return 3 * trained + (size(self.model) if self.validator is not None else 0)

    def save_checkpoint(self) -> None:
        """Write checkpoint.pt (weights + full training state) atomically; all ranks must call it.

        Every process first takes rank 0's buffers, so all of them hold what the file holds.
        """
        for objective in self.objectives:
            for module in objective.modules.values():
                broadcast_buffers(self.dist, module)
        rng = gather_objects(self.dist, capture_rng())
        if self.dist.is_main:
            save_checkpoint(self.run.run_dir / CHECKPOINT, self.model, model_name=self.run.model_name,
                            embedding_size=self.run.embedding_size, config=self.run.config,
                            extra={"training": self._training_state(rng)})
        self.last_checkpoint_step = self.step

    def _resume(self) -> None:
        checkpoint = load_training_checkpoint(self.run.run_dir)
        state = checkpoint["extra"]["training"]
        source = self.run.run_dir / CHECKPOINT
        if (state["world_size"], state["steps_per_epoch"]) != (self.dist.world_size, self.steps_per_epoch):
            raise FacebenchError(
                f"{source}: saved by {state['world_size']} process(es) at {state['steps_per_epoch']} steps per epoch, "
                f"now {self.dist.world_size} at {self.steps_per_epoch}; resume with the same process count and data"
            )
        if (checkpoint["model"], checkpoint["embedding_size"]) != (self.run.model_name, self.run.embedding_size):
            raise FacebenchError(
                f"{source}: holds a {checkpoint['model']} model (embedding {checkpoint['embedding_size']}), but "
                f"{self.run.run_dir / CONFIG} names {self.run.model_name} (embedding {self.run.embedding_size}); "
                "put back the checkpoint.pt that run wrote, or start a new run without --resume"
            )
        _load_weights(self.model, checkpoint["state_dict"], source, MODEL_KEY)
        for objective in self.objectives:
            for name, module in objective.modules.items():
                if name != MODEL_KEY:
                    _load_weights(module, state["modules"].get(name), source, name)
        for optimizer, saved in zip(self.optimizers, state["optimizers"], strict=True):
            optimizer.load_state_dict(saved)
        for scaler, saved in zip(self.scalers, state["scalers"], strict=True):
            scaler.load_state_dict(saved)
        restore_rng(state["rng"][self.dist.rank])
        self.step = state["step"]
        self.best = state["best"]
        self.last_checkpoint_step = self.step

    def _save_best(self, score: float) -> None:
        self.best = {"score": score, "step": self.step}
        save_checkpoint(self.run.run_dir / BEST, self.model, model_name=self.run.model_name,
                        embedding_size=self.run.embedding_size, config=self.run.config, extra={"best": self.best})

    # ------------------------------------------------------------------- loop
    def _train_step(self, images: torch.Tensor, labels: torch.Tensor, indices: torch.Tensor,
                    epoch: int) -> dict[str, torch.Tensor]:
        images = images.to(self.device, non_blocking=True)
        labels = labels.to(self.device, non_blocking=True)
        if self.config.channels_last:
            images = images.contiguous(memory_format=torch.channels_last)
        step = Step(images, labels, indices, self.modules, self.step, epoch)
        logged: dict[str, torch.Tensor] = {}
        clip = self.config.clip_grad_norm
        for k, objective in enumerate(self.objectives):
            optimizer, scaler = self.optimizers[k], self.scalers[k]
            self.schedules[k].apply(optimizer, self.step)
            with torch.autocast(self.device.type, dtype=self.amp_dtype or torch.float32,
                                enabled=self.amp_dtype is not None):
                terms = self.wrapped[k](step)
            total = sum(terms.values())
            optimizer.zero_grad(set_to_none=True)
            scaler.scale(total).backward()
            if clip is not None:
                scaler.unscale_(optimizer)
                torch.nn.utils.clip_grad_norm_(self.params[k], clip)
            scaler.step(optimizer)
            scaler.update()
            for name, value in terms.items():
                if f"loss_{name}" in logged:
                    raise ValueError(f"loss term {name!r} of objective {objective.name!r} is named twice")
                logged[f"loss_{name}"] = value.detach().float()
            if k == 0:
                logged["loss"] = total.detach().float()
        return logged

    def _flush(self, window: dict[str, torch.Tensor], count: int, started: float, epoch: int,
               metrics: CsvLog, tensorboard: TensorBoard) -> dict[str, float]:
        """Average the window over steps and processes, check it is finite, write a metrics row."""
        names = list(window)
        means = all_reduce_mean(self.dist, torch.stack([window[n] for n in names]) / count).tolist()
        elapsed = time.perf_counter() - started
        row: dict[str, Any] = {"step": self.step, "epoch": epoch, "lr": self.schedules[0].lr(self.step - 1)}
        for objective, schedule in zip(self.objectives[1:], self.schedules[1:]):
            row[f"lr_{objective.name}"] = schedule.lr(self.step - 1)
        row.update(zip(names, means, strict=True))
        row["samples_per_s"] = count * self.config.batch_size * self.dist.world_size / elapsed
        if self.dist.is_main:
            metrics.write(row)
            tensorboard.scalars(self.step, {k: v for k, v in row.items() if k not in ("step", "epoch")}, "train")
        bad = [n for n, v in zip(names, means, strict=True) if not math.isfinite(v)]
        if bad:
            where = (f"{self.run.run_dir / CHECKPOINT} (step {self.last_checkpoint_step}) is the last good checkpoint"
                     if self.last_checkpoint_step is not None else "no checkpoint was written yet")
            raise TrainingDiverged(
                f"{bad[0]} became {means[names.index(bad[0])]} between steps {self.step - count + 1} and {self.step}; "
                f"training stopped, {where}; lower --lr or set --clip-grad-norm"
            )
        self.last_metrics = row
        return row

    def _stop(self, stop: StopAtStepEnd, window: dict[str, torch.Tensor], count: int, started: float, epoch: int,
              metrics: CsvLog, tensorboard: TensorBoard) -> None:
        """SIGTERM came during this step: its metrics and a checkpoint at it are written, then the signal acts."""
        if count:
            self._flush(window, count, started, epoch, metrics, tensorboard)
        if self.last_checkpoint_step != self.step:
            self.save_checkpoint()
        stop.deliver()

    def _validate(self, epoch: int, val_log: CsvLog, tensorboard: TensorBoard) -> None:
        if self.validator is not None and self.dist.is_main:
            values = self.validator(self.model, self.step, epoch)
            self.model.train()
            val_log.write({"step": self.step, "epoch": epoch, **values})
            tensorboard.scalars(self.step, values, "val")
            if self.best is None or values["score"] > self.best["score"]:
                self._save_best(values["score"])
            self.console.print(
                f"step {self.step} epoch {epoch}: "
                + ", ".join(f"{k} {v:.4f}" for k, v in values.items() if k != "score"),
                highlight=False, soft_wrap=True,
            )  # fmt: skip
        barrier(self.dist)

    def _write_config(self, resumed: bool) -> None:
        from facebench.provenance import environment

        if self.dist.is_main:
            RunFolder(self.run.run_dir).write_config({
                "config": self.run.config,
                **self.run.info,
                "world_size": self.dist.world_size,
                "steps_per_epoch": self.steps_per_epoch,
                "total_steps": self.total_steps,
                "amp_dtype": str(self.amp_dtype).removeprefix("torch.") if self.amp_dtype else None,
                "resumed_at_step": self.step if resumed else None,
                "environment": environment(),
            })  # fmt: skip

    def fit(self, resume: bool = False) -> FitResult:
        """Train to the last step (or on from ``run_dir/checkpoint.pt`` with ``resume``)."""
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeRemainingColumn,
        )

        cfg = self.config
        if cfg.threads:
            torch.set_num_threads(cfg.threads)
        seed_everything(cfg.seed + self.dist.rank)
        self._build()
        if self.dist.is_main:  # a full disk said now, not after the first epoch's work
            check_free_space(self.run.run_dir, self.checkpoint_bytes(), f"the checkpoints of {self.run.run_dir}")
        if resume:
            self._resume()
        self._write_config(resume)
        resume_step = self.step if resume else None
        metrics = CsvLog(self.run.run_dir / METRICS, resume_step)
        val_log = CsvLog(self.run.run_dir / VAL_LOG, resume_step)
        tensorboard = TensorBoard(self.run.run_dir, enabled=self.dist.is_main)
        window: dict[str, torch.Tensor] = {}
        count, started, run_started = 0, time.perf_counter(), time.perf_counter()
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                   TextColumn("{task.fields[speed]}"), TextColumn("{task.fields[loss]}"), TimeRemainingColumn())
        epoch = self.step // self.steps_per_epoch
        with Progress(*columns, console=self.console, disable=not self.show_progress) as bar:
            task = bar.add_task("train", total=self.total_steps, completed=self.step, speed="", loss="")
            stop = StopAtStepEnd(enabled=self.dist.world_size == 1)
            try:
                stop.__enter__()
                for epoch in range(self.step // self.steps_per_epoch, cfg.epochs):
                    self.sampler.set_epoch(epoch, self.step - epoch * self.steps_per_epoch)
                    bar.update(task, description=f"epoch {epoch + 1}/{cfg.epochs}")
                    batches = iter(self.loader)
                    while True:
                        try:
                            images, labels, indices = next(batches)
                        except StopIteration:
                            break
                        except Exception:  # the loader's workers ended by the same SIGTERM: stop at this step
                            if stop.requested is None:
                                raise
                            self._stop(stop, window, count, started, epoch, metrics, tensorboard)
                            raise
                        logged = self._train_step(images, labels, indices, epoch)
                        for name, value in logged.items():
                            window[name] = window[name] + value if name in window else value
                        count += 1
                        self.step += 1
                        last = self.step == self.total_steps
                        epoch_end = self.step % self.steps_per_epoch == 0
                        want_ckpt = last or (cfg.checkpoint_every > 0 and self.step % cfg.checkpoint_every == 0)
                        want_val = self.validator is not None and (
                            last or (self.step % cfg.val_every == 0 if cfg.val_every else epoch_end))
                        flush = self.step % cfg.log_every == 0 or want_ckpt or want_val or epoch_end
                        if flush:
                            row = self._flush(window, count, started, epoch, metrics, tensorboard)
                            bar.update(task, speed=f"{row['samples_per_s']:.1f} img/s", loss=f"loss {row['loss']:.3f}")
                            if self.show_progress and not self.console.is_terminal:  # a log file: one line per row
                                self.console.print(f"step {self.step}/{self.total_steps} epoch {epoch + 1}/{cfg.epochs}"
                                                   f" loss {row['loss']:.4f} lr {row['lr']:.4g}"
                                                   f" {row['samples_per_s']:.1f} img/s", highlight=False)
                        if want_val:
                            if stop.requested is not None:  # no checkpoint at a step whose validation did not run:
                                stop.deliver()              # the resumed run does both again
                            stop.immediate = True
                            self._validate(epoch, val_log, tensorboard)
                            stop.immediate = False
                        if want_ckpt:
                            self.save_checkpoint()
                        if flush:  # the next window times training only
                            window, count, started = {}, 0, time.perf_counter()
                        bar.update(task, completed=self.step)
                        for callback in self.callbacks:
                            callback(self, self.step)
                        if stop.requested is not None:
                            self._stop(stop, window, count, started, epoch, metrics, tensorboard)
            finally:
                stop.__exit__()
                tensorboard.close()
        return FitResult(self.step, epoch, self.last_metrics, self.best, time.perf_counter() - run_started)

