"""``facebench distill``: train a student with a teacher's help (kd, adv, emb) or alone (none), like ``train``.

It takes every option of ``facebench train`` -- the very Typer definitions, read from
``train``'s signature, so the two commands cannot drift apart -- except ``--model``,
which becomes ``--student``, plus the teacher, the method and the method's options.
"""

from __future__ import annotations

import inspect
from pathlib import Path
from typing import Any

import typer

from facebench.cli import train_cmd
from facebench.cli.app import command, console
from facebench.distill.config import (
    ADV_LOSSES,
    DEFAULT_ALPHA,
    RELATIONAL_ALPHA,
    EMB_LOSSES,
    METHODS,
    DistillConfig,
)

D = DistillConfig()


def _option(name: str, annotation: Any, default: Any) -> inspect.Parameter:
    return inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, default=default, annotation=annotation)


OWN_FIRST = [
    _option("teacher", str | None, typer.Option(
        None, help="Teacher: a zoo name (its run folder runs/NAME), a run folder (its checkpoint.pt), a checkpoint file, "
        "or dlib (pretrained, embeddings only: --method emb).")),
    _option("student", str | None, typer.Option(None, help="Student zoo model name (facebench models lists them).")),
    _option("method", str | None, typer.Option(None, help=f"{' | '.join(METHODS)} (none: the student alone, same settings).")),
]  # fmt: skip
OWN_LAST = [
    _option("alpha", float | None, typer.Option(
        None, help="Weight of the distillation term (default: " + ", ".join(f"{k} {v:g}" for k, v in DEFAULT_ALPHA.items())
        + f"; emb relational {RELATIONAL_ALPHA:g}).")),
    _option("temperature", float | None, typer.Option(None, help=f"kd: softmax temperature T (default: {D.temperature:g}).")),
    _option("emb_loss", str | None, typer.Option(None, help=f"emb: {', '.join(EMB_LOSSES)} (default: cosine between equal-size embeddings, "
        "relational between unequal ones).")),
    _option("adv_loss", str | None, typer.Option(None, help=f"adv: {' or '.join(ADV_LOSSES)} (default: {D.adv_loss}).")),
    _option("disc_optimizer", str | None, typer.Option(None, help=f"adv: discriminator optimiser (default: {D.disc_optimizer}).")),
    _option("disc_lr", float | None, typer.Option(None, help=f"adv: discriminator peak learning rate (default: {D.disc_lr:g}).")),
    _option("disc_weight_decay", float | None, typer.Option(None, help=f"adv: discriminator weight decay (default: {D.disc_weight_decay:g}).")),
    _option("disc_hidden", int | None, typer.Option(None, help=f"adv: discriminator channels (default: {D.disc_hidden}).")),
]  # fmt: skip


REPLACED = {"out": _option("out", Path | None, typer.Option(None, help="Run folder (default: runs/<student>-<method>)."))}


def _parameters() -> list[inspect.Parameter]:
    """distill's own options around train's (minus --model; --out with its own default), all keyword-only."""
    borrowed = [REPLACED.get(name, p.replace(kind=inspect.Parameter.KEYWORD_ONLY))
                for name, p in inspect.signature(train_cmd.train, eval_str=True).parameters.items() if name != "model"]
    return [*OWN_FIRST, *borrowed, *OWN_LAST]


def distill(**options: Any) -> None:
    """Distil a teacher into a student: kd (soft targets), adv (feature-map discriminator), emb (embeddings), none.

    Writes the run folder of facebench train (config.json with the teacher's sha256, checkpoint.pt, best.pt,
    metrics.csv with each loss term, verify.json). Multi-GPU: torchrun --nproc_per_node=K -m facebench distill ...
    """
    from dataclasses import fields

    from facebench.distill.run import distill as run_distill
    from facebench.train.run import resume_config
    from facebench.train.validate import parse_val_option

    options["model"] = options.pop("student")
    given = {f.name: options[f.name] for f in fields(DistillConfig) if options.get(f.name) is not None}
    if options["val"]:
        given["val"] = parse_val_option(options["val"])
    if options["out"] is not None:
        given["out"] = str(options["out"])
    resume: Path | None = options["resume"]
    config = resume_config(resume, given, DistillConfig) if resume is not None else DistillConfig(**given)
    result = run_distill(config, resume=resume is not None, console=console)  # type: ignore[arg-type]
    if result.is_main:
        fit = result.fit
        best = f", best score {fit.best['score']:.4f} at step {fit.best['step']}" if fit.best else ""
        terms = ", ".join(f"{k} {v:.4f}" for k, v in fit.last_metrics.items() if k.startswith("loss"))
        console.print(f"distilled {config.model} ({config.method}) to step {fit.step} in {fit.wall_s:.1f} s, {terms}{best}; "
                      f"run folder {result.run_dir}", highlight=False, soft_wrap=True)


PARAMETERS = _parameters()
distill.__signature__ = inspect.Signature(PARAMETERS, return_annotation=None)  # type: ignore[attr-defined]
distill.__annotations__ = {p.name: p.annotation for p in PARAMETERS} | {"return": None}
command("distill")(distill)
