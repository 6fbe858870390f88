"""``facebench train``: train a zoo model with an ArcFace/CosFace head; alone or under torchrun (DDP)."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.train.config import DEFAULT_LR, DEFAULT_WEIGHT_DECAY, TrainConfig

D = TrainConfig()  # defaults shown in --help; options left out stay None so --resume can tell them apart


@command("train")
def train(
    model: str | None = typer.Option(None, help="Zoo model name (facebench models lists them)."),
    data: str | None = typer.Option(None, help="Identity folders root/<identity>/<image>, or an insightface train.rec."),
    head: str | None = typer.Option(None, help=f"Margin head: arcface or cosface (default: {D.head})."),
    epochs: int | None = typer.Option(None, help=f"Default: {D.epochs}."),
    batch_size: int | None = typer.Option(None, help=f"Images per step per process (default: {D.batch_size})."),
    lr: float | None = typer.Option(None, help=f"Peak learning rate (default: {DEFAULT_LR['sgd']} for sgd, {DEFAULT_LR['adamw']} for adamw)."),
    optimizer: str | None = typer.Option(None, help=f"sgd (momentum 0.9) or adamw (default: {D.optimizer})."),
    weight_decay: float | None = typer.Option(None, help=f"Default: {DEFAULT_WEIGHT_DECAY['sgd']} for sgd, {DEFAULT_WEIGHT_DECAY['adamw']} for adamw."),
    schedule: str | None = typer.Option(None, help=f"LR after warm-up: cosine or poly (default: {D.schedule})."),
    warmup_epochs: float | None = typer.Option(None, help=f"Linear warm-up length (default: {D.warmup_epochs})."),
    out: Path | None = typer.Option(None, help="Run folder (default: runs/<model>)."),
    val: list[str] | None = typer.Option(None, help="Validation pairs NAME=PATH (pairs.txt, .bin, .csv); repeatable; "
                                         "the first set's accuracy picks best.pt."),
    val_every: int | None = typer.Option(None, help="Steps between validations (default: 0 = each epoch end)."),
    val_folds: int | None = typer.Option(None, help="Validate on the first k folds only (CPU budgets) (default: all)."),
    val_flip: bool | None = typer.Option(None, "--val-flip/--no-val-flip", help="Flip TTA in validation (default: on)."),
    resume: Path | None = typer.Option(None, help="Continue the run in this folder exactly where its checkpoint.pt left off."),
    device: str | None = typer.Option(None, help="auto, cpu, cuda or cuda:N (default: auto)."),
    amp: bool | None = typer.Option(None, "--amp/--no-amp", help="Mixed precision (CUDA only) (default: on for CUDA)."),
    amp_dtype: str | None = typer.Option(None, help="bf16 or fp16 (default: bf16 where supported)."),
    channels_last: bool | None = typer.Option(None, "--channels-last/--no-channels-last", help="Default: off."),
    clip_grad_norm: float | None = typer.Option(None, help="Clip the gradients' global L2 norm (default: off)."),
    seed: int | None = typer.Option(None, help=f"Default: {D.seed}."),
    checkpoint_every: int | None = typer.Option(None, help=f"Steps between checkpoints (default: {D.checkpoint_every})."),
    log_every: int | None = typer.Option(None, help=f"Steps per metrics.csv row (default: {D.log_every})."),
    workers: int | None = typer.Option(None, help="Data loading processes (default: cores - 1)."),
    threads: int | None = typer.Option(None, help="CPU threads for training (default: torch's)."),
    embedding_size: int | None = typer.Option(None, help=f"Default: {D.embedding_size}."),
    scale: float | None = typer.Option(None, help="Head scale s (default: 64)."),
    margin: float | None = typer.Option(None, help="Head margin m (default: arcface 0.5, cosface 0.35)."),
    align: str | None = typer.Option(None, help=f"center, none, mtcnn or haar for non-112x112 images (default: {D.align})."),
) -> None:
    """Train a face model with a margin head; writes config.json, checkpoint.pt, best.pt, metrics.csv, verify.json.

    Multi-GPU / multi-node: torchrun --nproc_per_node=K -m facebench train ... (--batch-size is per process).
    """
    from dataclasses import fields

    from facebench.train.run import resume_config
    from facebench.train.run import train as run_training
    from facebench.train.validate import parse_val_option

    options = locals()
    given = {f.name: options[f.name] for f in fields(TrainConfig) if options.get(f.name) is not None}
    if val:
        given["val"] = parse_val_option(val)
    if out is not None:
        given["out"] = str(out)
    config = resume_config(resume, given) if resume is not None else TrainConfig(**given)
    result = run_training(config, resume=resume is not None, console=console)
    fit = result.fit
    if result.is_main and not fit.last_metrics:
        console.print(f"{result.run_dir} already finished at step {fit.step}; nothing to train", highlight=False)
    elif result.is_main:
        best = f", best score {fit.best['score']:.4f} at step {fit.best['step']}" if fit.best else ""
        loss = fit.last_metrics["loss"]
        console.print(f"trained {config.model} to step {fit.step} in {fit.wall_s:.1f} s, loss {loss:.4f}{best}; "
                      f"run folder {result.run_dir}", highlight=False, soft_wrap=True)
