"""distill's options: declared in its own signature, the same list as before, and train's where they share one."""

from __future__ import annotations

import inspect
import re

import typer
from typer.core import TyperGroup, TyperOption

from facebench.cli import app, distill_cmd

DISTILL_OPTIONS = [
    "--teacher", "--teacher-weights", "--student", "--method",
    "--data", "--head", "--epochs", "--batch-size", "--lr", "--optimizer", "--weight-decay", "--schedule",
    "--warmup-epochs", "--out", "--val", "--val-every", "--val-folds", "--val-flip", "--no-val-flip",
    "--val-batch-size", "--resume",
    "--device", "--amp", "--no-amp", "--amp-dtype", "--channels-last", "--no-channels-last", "--clip-grad-norm",
    "--seed", "--checkpoint-every", "--log-every", "--workers", "--threads", "--embedding-size", "--scale", "--margin",
    "--align", "--augment",
    "--alpha", "--temperature", "--emb-loss", "--adv-loss", "--disc-optimizer", "--disc-lr", "--disc-weight-decay",
    "--disc-hidden",
]  # fmt: skip  (as `facebench distill --help` listed them when its signature was still copied from train's,
#             plus --val-batch-size, added to train and distill so bench's printed commands all run, and
#             --teacher-weights, for a pretrained zoo teacher, and --augment, shared with train)


def options(name: str) -> dict[str, TyperOption]:
    """The Click options behind subcommand ``name``, by parameter name, in --help order."""
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return {p.name: p for p in group.commands[name].params if isinstance(p, TyperOption)}


def test_distill_lists_exactly_its_options() -> None:
    names = [opt for p in options("distill").values() for opt in (*p.opts, *p.secondary_opts)]
    assert names == DISTILL_OPTIONS


def test_distill_shares_train_help_and_defaults() -> None:
    train, distill = options("train"), options("distill")
    shared = (train.keys() & distill.keys()) - {"out"}  # --out: distill's own help (runs/<student>-<method>)
    assert shared == train.keys() - {"model", "out"}  # every train option but --model (--student in distill)
    for name in shared:
        assert (distill[name].help, distill[name].default) == (train[name].help, train[name].default), name
        assert (distill[name].opts, distill[name].secondary_opts) == (train[name].opts, train[name].secondary_opts)


def test_distill_declares_its_signature() -> None:
    assert not re.search(r"__signature__\s*=", inspect.getsource(distill_cmd))
