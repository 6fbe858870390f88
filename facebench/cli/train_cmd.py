"""``facebench train``: train a zoo model with an ArcFace/CosFace head; alone or under torchrun (DDP).

Each option is a named ``Annotated`` type so ``facebench distill`` can declare the same options by importing
them; all but ``ModelOption`` and ``OutOption`` (train's own) are shared with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, Literal, TypeVar, cast

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import DEVICE_METAVAR, Align, Augment, check_device, non_negative, positive
from facebench.train.config import (
    AMP_DTYPES,
    DEFAULT_LR,
    DEFAULT_WEIGHT_DECAY,
    HEADS,
    OPTIMIZERS,
    SCHEDULES,
    TrainConfig,
)

D = TrainConfig()  # defaults shown in --help; options left out stay None so --resume can tell them apart
Head = Literal[HEADS]  # Literal[TUPLE] is Literal[each value of TUPLE]
Optimizer = Literal[OPTIMIZERS]
Schedule = Literal[SCHEDULES]
AmpDtype = Literal[AMP_DTYPES]

ModelOption = Annotated[str | None, typer.Option(
    help="Zoo model name (facebench models lists them); required unless --resume.")]
OutOption = Annotated[Path | None, typer.Option(help="Run folder.", show_default="runs/<model>")]

DataOption = Annotated[str | None, typer.Option(
    help="Identity folders root/<identity>/<image>, or an insightface train.rec; required unless --resume.")]
HeadOption = Annotated[Head | None, typer.Option(help="Margin head.", show_default=D.head)]
EpochsOption = Annotated[int | None, typer.Option(min=1, show_default=str(D.epochs))]
BatchSizeOption = Annotated[int | None, typer.Option(
    min=1, help="Images per step per process.", show_default=str(D.batch_size))]
LrOption = Annotated[float | None, typer.Option(
    callback=positive, help="Peak learning rate.",
    show_default=f"{DEFAULT_LR['sgd']} for sgd, {DEFAULT_LR['adamw']} for adamw")]
OptimizerOption = Annotated[Optimizer | None, typer.Option(help="sgd has momentum 0.9.", show_default=D.optimizer)]
WeightDecayOption = Annotated[float | None, typer.Option(
    callback=non_negative,
    show_default=f"{DEFAULT_WEIGHT_DECAY['sgd']} for sgd, {DEFAULT_WEIGHT_DECAY['adamw']} for adamw")]
ScheduleOption = Annotated[Schedule | None, typer.Option(help="LR after warm-up.", show_default=D.schedule)]
WarmupEpochsOption = Annotated[float | None, typer.Option(
    callback=non_negative, help="Linear warm-up length.", show_default=str(D.warmup_epochs))]
ValOption = Annotated[list[str] | None, typer.Option(
    help="Validation pairs NAME=PATH (pairs.txt, .bin, .csv); repeatable; the first set's accuracy picks best.pt.")]
ValEveryOption = Annotated[int | None, typer.Option(
    min=0, help="Steps between validations (0: each epoch end).", show_default=str(D.val_every))]
ValFoldsOption = Annotated[int | None, typer.Option(
    min=2, help="Validate on the first k folds only (CPU budgets).", show_default="all")]
ValFlipOption = Annotated[bool | None, typer.Option(
    "--val-flip/--no-val-flip", help="Flip TTA in validation.", show_default="on")]
ValBatchSizeOption = Annotated[int | None, typer.Option(
    min=1, help="Images per forward pass in validation.", show_default=str(D.val_batch_size))]
ResumeOption = Annotated[Path | None, typer.Option(
    help="Continue the run in this folder exactly where its checkpoint.pt left off.")]
DeviceOption = Annotated[str | None, typer.Option(
    callback=check_device, metavar=DEVICE_METAVAR, show_default=D.device)]
AmpOption = Annotated[bool | None, typer.Option(
    "--amp/--no-amp", help="Mixed precision (CUDA only).", show_default="on for CUDA")]
AmpDtypeOption = Annotated[AmpDtype | None, typer.Option(show_default="bf16 where supported")]
ChannelsLastOption = Annotated[bool | None, typer.Option(
    "--channels-last/--no-channels-last", show_default="no-channels-last")]
ClipGradNormOption = Annotated[float | None, typer.Option(
    callback=positive, help="Clip the gradients' global L2 norm.", show_default="off")]
SeedOption = Annotated[int | None, typer.Option(min=0, show_default=str(D.seed))]
CheckpointEveryOption = Annotated[int | None, typer.Option(
    min=0, help="Steps between checkpoints (0: at the end only).", show_default=str(D.checkpoint_every))]
LogEveryOption = Annotated[int | None, typer.Option(
    min=1, help="Steps per metrics.csv row.", show_default=str(D.log_every))]
WorkersOption = Annotated[int | None, typer.Option(min=0, help="Data loading processes.", show_default="cores - 1")]
ThreadsOption = Annotated[int | None, typer.Option(min=1, help="CPU threads for training.", show_default="torch's")]
EmbeddingSizeOption = Annotated[int | None, typer.Option(min=1, show_default=str(D.embedding_size))]
ScaleOption = Annotated[float | None, typer.Option(callback=positive, help="Head scale s.", show_default="64")]
MarginOption = Annotated[float | None, typer.Option(
    callback=non_negative, help="Head margin m.", show_default="arcface 0.5, cosface 0.35")]
AlignOption = Annotated[Align | None, typer.Option(
    help="How images that are not 112x112 are cropped.", show_default=D.align)]
AugmentOption = Annotated[Augment | None, typer.Option(
    help="Training augmentation: flip (random horizontal flip), flip-shift (also a random shift of up to 8 px), "
    "none.", show_default=D.augment)]

ConfigT = TypeVar("ConfigT", bound=TrainConfig)


def config_from_options(cls: type[ConfigT], options: Mapping[str, Any]) -> ConfigT:
    """The ``cls`` built from the options given (not None), or with --resume the run folder's config they must
    agree with; shared by train and distill so both read their options the same way."""
    from facebench.eval.verify import parse_named_pairs
    from facebench.train.run import resume_config

    given = {f.name: options[f.name] for f in fields(cls) if options.get(f.name) is not None}
    if options["val"]:
        given["val"] = parse_named_pairs(options["val"])
    if options["out"] is not None:
        given["out"] = str(options["out"])
    resume = options["resume"]
    return cast(ConfigT, resume_config(resume, given, cls)) if resume is not None else cls(**given)


@command("train", out_dirs=("out", "resume"))
def train(
    model: ModelOption = None,
    data: DataOption = None,
    head: HeadOption = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    optimizer: OptimizerOption = None,
    weight_decay: WeightDecayOption = None,
    schedule: ScheduleOption = None,
    warmup_epochs: WarmupEpochsOption = None,
    out: OutOption = None,
    val: ValOption = None,
    val_every: ValEveryOption = None,
    val_folds: ValFoldsOption = None,
    val_flip: ValFlipOption = None,
    val_batch_size: ValBatchSizeOption = None,
    resume: ResumeOption = None,
    device: DeviceOption = None,
    amp: AmpOption = None,
    amp_dtype: AmpDtypeOption = None,
    channels_last: ChannelsLastOption = None,
    clip_grad_norm: ClipGradNormOption = None,
    seed: SeedOption = None,
    checkpoint_every: CheckpointEveryOption = None,
    log_every: LogEveryOption = None,
    workers: WorkersOption = None,
    threads: ThreadsOption = None,
    embedding_size: EmbeddingSizeOption = None,
    scale: ScaleOption = None,
    margin: MarginOption = None,
    align: AlignOption = None,
    augment: AugmentOption = None,
) -> None:
    """Train a face model with a margin head; writes config.json, checkpoint.pt, best.pt, metrics.csv, verify.json.

    Multi-GPU / multi-node: torchrun --nproc_per_node=K -m facebench train ... (--batch-size is per process).
    """
    from facebench.allocator import tune_allocator
    from facebench.train.run import train as run_training

    tune_allocator()
    config = config_from_options(TrainConfig, locals())
    result = run_training(config, resume=resume is not None, console=console)
    fit = result.fit
    if result.is_main and not fit.last_metrics:
        console.print(f"{result.run_dir} already finished at step {fit.step}; nothing to train", highlight=False)
    elif result.is_main:
        best = f", best score {fit.best['score']:.4f} at step {fit.best['step']}" if fit.best else ""
        loss = fit.last_metrics["loss"]
        console.print(f"trained {config.model} to step {fit.step} in {fit.wall_s:.1f} s, loss {loss:.4f}{best}; "
                      f"run folder {result.run_dir}", highlight=False, soft_wrap=True)
