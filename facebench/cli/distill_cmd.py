"""``facebench distill``: train a student with a teacher's help (kd, adv, emb) or alone (none), like ``train``.

It declares every option of ``facebench train`` with train's own named ``Annotated`` types, so the two commands
share one definition of each, except ``--model``, which becomes ``--student``, and ``--out``, whose default
differs; plus the teacher, the method and the method's options.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Literal

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import non_negative, positive
from facebench.cli.train_cmd import (
    AlignOption,
    AmpDtypeOption,
    AmpOption,
    AugmentOption,
    BatchSizeOption,
    ChannelsLastOption,
    CheckpointEveryOption,
    ClipGradNormOption,
    DataOption,
    DeviceOption,
    EmbeddingSizeOption,
    EpochsOption,
    HeadOption,
    LogEveryOption,
    LrOption,
    MarginOption,
    Optimizer,
    OptimizerOption,
    ResumeOption,
    ScaleOption,
    ScheduleOption,
    SeedOption,
    ThreadsOption,
    ValBatchSizeOption,
    ValEveryOption,
    ValFlipOption,
    ValFoldsOption,
    ValOption,
    WarmupEpochsOption,
    WeightDecayOption,
    WorkersOption,
    config_from_options,
)
from facebench.distill.config import (
    ADV_LOSSES,
    DEFAULT_ALPHA,
    EMB_LOSSES,
    METHODS,
    RELATIONAL_ALPHA,
    DistillConfig,
)

D = DistillConfig()
Method = Literal[tuple(METHODS)]  # Literal[TUPLE] is Literal[each value of TUPLE]
EmbLoss = Literal[EMB_LOSSES]
AdvLoss = Literal[ADV_LOSSES]

TeacherOption = Annotated[str | None, typer.Option(
    help="Teacher: a zoo name (its run folder runs/NAME; with --teacher-weights: those weights), a run folder (its "
    "checkpoint.pt), a checkpoint file, a .onnx/.xml file or dlib (both embeddings only: emb, or kd through a head "
    "fitted on them).")]
TeacherWeightsOption = Annotated[str | None, typer.Option(
    help="Weights for a zoo-name teacher: a state dict (e.g. pretrained mfn128) or a facebench checkpoint.")]
StudentOption = Annotated[str | None, typer.Option(
    help="Student zoo model name (facebench models lists them); required unless --resume.")]
MethodOption = Annotated[Method | None, typer.Option(
    help="none: the student alone, same settings; required unless --resume.")]
DistillOutOption = Annotated[Path | None, typer.Option(help="Run folder.", show_default="runs/<student>-<method>")]
AlphaOption = Annotated[float | None, typer.Option(
    callback=non_negative, help="Weight of the distillation term.",
    show_default=", ".join(f"{k} {v:g}" for k, v in DEFAULT_ALPHA.items()) + f"; emb relational {RELATIONAL_ALPHA:g}")]
TemperatureOption = Annotated[float | None, typer.Option(
    callback=positive, help="kd: softmax temperature T.", show_default=f"{D.temperature:g}")]
EmbLossOption = Annotated[EmbLoss | None, typer.Option(
    help="emb: the distance of the embeddings.",
    show_default="cosine between equal-size embeddings, relational between unequal ones")]
AdvLossOption = Annotated[AdvLoss | None, typer.Option(help="adv: the discriminator's loss.", show_default=D.adv_loss)]
DiscOptimizerOption = Annotated[Optimizer | None, typer.Option(
    help="adv: discriminator optimiser.", show_default=D.disc_optimizer)]
DiscLrOption = Annotated[float | None, typer.Option(
    callback=positive, help="adv: discriminator peak learning rate.", show_default=f"{D.disc_lr:g}")]
DiscWeightDecayOption = Annotated[float | None, typer.Option(
    callback=non_negative, help="adv: discriminator weight decay.", show_default=f"{D.disc_weight_decay:g}")]
DiscHiddenOption = Annotated[int | None, typer.Option(
    min=2, help="adv: discriminator channels.", show_default=str(D.disc_hidden))]


@command("distill", out_dirs=("out", "resume"))
def distill(
    teacher: TeacherOption = None,
    teacher_weights: TeacherWeightsOption = None,
    student: StudentOption = None,
    method: MethodOption = None,
    data: DataOption = None,
    head: HeadOption = None,
    epochs: EpochsOption = None,
    batch_size: BatchSizeOption = None,
    lr: LrOption = None,
    optimizer: OptimizerOption = None,
    weight_decay: WeightDecayOption = None,
    schedule: ScheduleOption = None,
    warmup_epochs: WarmupEpochsOption = None,
    out: DistillOutOption = None,
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
    alpha: AlphaOption = None,
    temperature: TemperatureOption = None,
    emb_loss: EmbLossOption = None,
    adv_loss: AdvLossOption = None,
    disc_optimizer: DiscOptimizerOption = None,
    disc_lr: DiscLrOption = None,
    disc_weight_decay: DiscWeightDecayOption = None,
    disc_hidden: DiscHiddenOption = None,
) -> None:
    """Distil a teacher into a student: kd (soft targets), adv (feature-map discriminator), emb (embeddings), none.

    Writes the run folder of facebench train (config.json with the teacher's sha256, checkpoint.pt, best.pt,
    metrics.csv with each loss term, verify.json). Multi-GPU: torchrun --nproc_per_node=K -m facebench distill ...
    """
    from facebench.allocator import tune_allocator
    from facebench.distill.run import distill as run_distill

    tune_allocator()
    config = config_from_options(DistillConfig, {**locals(), "model": student})  # the student is the config's model
    result = run_distill(config, resume=resume is not None, console=console)
    if result.is_main:
        fit = result.fit
        best = f", best score {fit.best['score']:.4f} at step {fit.best['step']}" if fit.best else ""
        terms = ", ".join(f"{k} {v:.4f}" for k, v in fit.last_metrics.items() if k.startswith("loss"))
        console.print(f"distilled {config.model} ({config.method}) to step {fit.step} in {fit.wall_s:.1f} s, "
                      f"{terms}{best}; run folder {result.run_dir}", highlight=False, soft_wrap=True)
