"""``facebench distill`` as a library call: ``facebench.train.run.train`` with a distillation method plugged in.

The student, its margin head, the data pipeline (each image decoded once, the batch fed
to teacher and student alike), validation, checkpoints and resume are plain training's;
the method (``facebench.distill.methods``) adds its loss terms, its extra objectives
(the adversarial discriminator) and the frozen teacher. config.json gains the method's
options under ``config`` and the teacher's identity at top level (``teacher``: model,
checkpoint, sha256, ...), which is what ``facebench report`` reads.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path

from rich.console import Console

from facebench.distill.config import (
    ADV_LOSSES,
    DEFAULT_ALPHA,
    EMB_LOSSES,
    DistillConfig,
)
from facebench.errors import FacebenchError
from facebench.runfolder import RunFolder
from facebench.train.config import OPTIMIZERS
from facebench.train.engine import Engine, Objective
from facebench.train.run import Plan, TrainResult, run_dir_of, train


def default_out(config: DistillConfig) -> str:
    """runs/<student>-<method> when --out is not given."""
    return str(Path("runs") / f"{config.model}-{config.method}")


def check_distill_config(config: DistillConfig) -> None:
    """Refuse bad distillation options with one line each, before anything is loaded."""
    from facebench.distill.methods import method_spec

    spec = method_spec(config.method)
    if not config.model:
        raise FacebenchError("give --student NAME (a zoo model; facebench models lists them)")
    if spec.needs and not config.teacher:
        raise FacebenchError(f"--method {config.method} needs --teacher NAME|RUN_DIR|checkpoint")
    checks = [
        (config.resolved_alpha() >= 0, f"--alpha {config.alpha}: must be >= 0"),
        (config.temperature > 0, f"--temperature {config.temperature}: must be positive"),
        (config.emb_loss in (None, *EMB_LOSSES),
         f"--emb-loss {config.emb_loss!r} is not one of: {', '.join(EMB_LOSSES)}"),
        (config.adv_loss in ADV_LOSSES, f"--adv-loss {config.adv_loss!r} is not one of: {', '.join(ADV_LOSSES)}"),
        (config.disc_optimizer in OPTIMIZERS,
         f"--disc-optimizer {config.disc_optimizer!r} is not one of: {', '.join(OPTIMIZERS)}"),
        (config.disc_lr > 0, f"--disc-lr {config.disc_lr}: must be positive"),
        (config.disc_weight_decay >= 0, f"--disc-weight-decay {config.disc_weight_decay}: must be >= 0"),
        (config.disc_hidden >= 2, f"--disc-hidden {config.disc_hidden}: must be at least 2"),
    ]  # fmt: skip
    for ok, message in checks:
        if not ok:
            raise FacebenchError(message)


def distill(
    config: DistillConfig,
    *,
    resume: bool = False,
    callbacks: Sequence[Callable[[Engine, int], None]] = (),
    console: Console | None = None,
    progress: bool = True,
) -> TrainResult:
    """Train ``config.model`` (the student) on ``config.data`` with ``config.method`` from ``config.teacher``."""
    from facebench.distill.methods import method_spec, require
    from facebench.distill.teacher import resolve_teacher
    from facebench.models import model_spec
    from facebench.modelspec import ModelOptions
    from facebench.train.run import check_train_config

    check_distill_config(config)
    if not config.out:
        config.out = default_out(config)
    check_train_config(config)
    spec = method_spec(config.method)
    weights = ModelOptions(weights=Path(config.teacher_weights) if config.teacher_weights else None)
    teacher = resolve_teacher(config.teacher, options=weights) if config.teacher else None
    if teacher is not None:
        teacher.student_spec = model_spec(config.model).input_spec  # the batches it is given are the student's
        require(teacher, spec)
        if resume:
            RunFolder(run_dir_of(config)).check_teacher(teacher.sha256, teacher.label, "resume with that teacher")
        if config.method == "emb":
            config.resolve_emb_loss(teacher.embedding_size)
    if config.alpha is None and config.method in DEFAULT_ALPHA:
        config.alpha = config.resolved_alpha()  # config.json records the weight used, not "default"

    def method(student: Objective, dataset: object) -> Plan:
        if teacher is not None and spec.needs:
            teacher.prepare(dataset)
        return spec.build(config, teacher, student, dataset)

    return train(config, resume=resume, callbacks=callbacks, console=console, progress=progress, method=method)
