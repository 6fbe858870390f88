"""``facebench train``: train a zoo model with an ArcFace/CosFace head; alone or under torchrun (DDP).

Each option is a named ``Annotated`` type so ``facebench distill`` can declare the same options by importing
them; all but ``ModelOption`` and ``OutOption`` (train's own) are shared with it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import fields
from pathlib import Path
from typing import Annotated, Any, TypeVar, cast

import typer

from facebench.cli.app import command, console
from facebench.train.config import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TrainConfig

D = TrainConfig()  # defaults shown in --help; options left out stay None so --resume can tell them apart

ModelOption = Annotated[str | None, typer.Option(help="Zoo model name (facebench models lists them).")]
OutOption = Annotated[Path | None, typer.Option(help="Run folder (default: runs/<model>).")]

DataOption = Annotated[str | None, typer.Option(
    help="Identity folders root/<identity>/<image>, or an insightface train.rec.")]
HeadOption = Annotated[str | None, typer.Option(help=f"Margin head: arcface or cosface (default: {D.head}).")]
EpochsOption = Annotated[int | None, typer.Option(help=f"Default: {D.epochs}.")]
BatchSizeOption = Annotated[int | None, typer.Option(help=f"Images per step per process (default: {D.batch_size}).")]
LrOption = Annotated[float | None, typer.Option(
    help=f"Peak learning rate (default: {DEFAULT_LR['sgd']} for sgd, {DEFAULT_LR['adamw']} for adamw).")]
OptimizerOption = Annotated[str | None, typer.Option(help=f"sgd (momentum 0.9) or adamw (default: {D.optimizer}).")]
WeightDecayOption = Annotated[float | None, typer.Option(
    help=f"Default: {DEFAULT_WEIGHT_DECAY['sgd']} for sgd, {DEFAULT_WEIGHT_DECAY['adamw']} for adamw.")]
ScheduleOption = Annotated[str | None, typer.Option(help=f"LR after warm-up: cosine or poly (default: {D.schedule}).")]
WarmupEpochsOption = Annotated[float | None, typer.Option(help=f"Linear warm-up length (default: {D.warmup_epochs}).")]
ValOption = Annotated[list[str] | None, typer.Option(
    help="Validation pairs NAME=PATH (pairs.txt, .bin, .csv); repeatable; the first set's accuracy picks best.pt.")]
ValEveryOption = Annotated[int | None, typer.Option(help="Steps between validations (default: 0 = each epoch end).")]
ValFoldsOption = Annotated[int | None, typer.Option(
    help="Validate on the first k folds only (CPU budgets) (default: all).")]
ValFlipOption = Annotated[bool | None, typer.Option(
    "--val-flip/--no-val-flip", help="Flip TTA in validation (default: on).")]
ValBatchSizeOption = Annotated[int | None, typer.Option(
    help=f"Images per forward pass in validation (default: {D.val_batch_size}).")]
ResumeOption = Annotated[Path | None, typer.Option(
    help="Continue the run in this folder exactly where its checkpoint.pt left off.")]
DeviceOption = Annotated[str | None, typer.Option(help="auto, cpu, cuda or cuda:N (default: auto).")]
AmpOption = Annotated[bool | None, typer.Option(
    "--amp/--no-amp", help="Mixed precision (CUDA only) (default: on for CUDA).")]
AmpDtypeOption = Annotated[str | None, typer.Option(help="bf16 or fp16 (default: bf16 where supported).")]
ChannelsLastOption = Annotated[bool | None, typer.Option("--channels-last/--no-channels-last", help="Default: off.")]
ClipGradNormOption = Annotated[float | None, typer.Option(help="Clip the gradients' global L2 norm (default: off).")]
SeedOption = Annotated[int | None, typer.Option(help=f"Default: {D.seed}.")]
CheckpointEveryOption = Annotated[int | None, typer.Option(
    help=f"Steps between checkpoints (default: {D.checkpoint_every}).")]
LogEveryOption = Annotated[int | None, typer.Option(help=f"Steps per metrics.csv row (default: {D.log_every}).")]
WorkersOption = Annotated[int | None, typer.Option(help="Data loading processes (default: cores - 1).")]
ThreadsOption = Annotated[int | None, typer.Option(help="CPU threads for training (default: torch's).")]
EmbeddingSizeOption = Annotated[int | None, typer.Option(help=f"Default: {D.embedding_size}.")]
ScaleOption = Annotated[float | None, typer.Option(help="Head scale s (default: 64).")]
MarginOption = Annotated[float | None, typer.Option(help="Head margin m (default: arcface 0.5, cosface 0.35).")]
AlignOption = Annotated[str | None, typer.Option(
    help=f"center, none, mtcnn or haar for non-112x112 images (default: {D.align}).")]

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


@command("train")
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
) -> None:
    """Train a face model with a margin head; writes config.json, checkpoint.pt, best.pt, metrics.csv, verify.json.

    Multi-GPU / multi-node: torchrun --nproc_per_node=K -m facebench train ... (--batch-size is per process).
    """
    from facebench.train.run import train as run_training

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
