"""What a model argument names: the one resolver behind ``--model``, ``--models`` and ``--teacher``.

A spec is read by these rules, an existing file or folder first, then the names:

- **run folder**: for ``--model``/``--models`` (verify, profile) its ``best.pt``,
  else ``checkpoint.pt``: the weights that validated best. For ``--teacher`` (distill) its
  ``checkpoint.pt``, else ``best.pt``: the final weights, the only file that also holds the
  margin head (``kd`` needs its logits).
- **checkpoint file** (``.pt``): that file, for every option.
- **external name** (``dlib``): that pretrained model as it comes, for every option
  (a teacher of embeddings only).
- **zoo name** (``r18``): for ``--model``/``--models`` the architecture with seeded random
  weights, labelled *untrained* (the chance baseline). For ``--teacher`` the trained run
  ``runs/<name>/``, read as a run folder (a random teacher teaches nothing).

Anything else is refused in one line naming the option. The options differ only where the
purpose does: a verified model is judged by its best weights, a teacher must be the one
file whose head and hash a distilled run records. Exported models (``.onnx``) and other
runtimes join here as further kinds of spec.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebench.checkpoint import MODEL_KEYS, load_checkpoint
from facebench.errors import FacebenchError
from facebench.external import ExternalModel, list_external, load_external
from facebench.models import create_model, list_models
from facebench.runfolder import BEST, CHECKPOINT

MODEL, TEACHER = "model", "teacher"  # the two purposes a spec is resolved for (the option it came from)
RUN_CHECKPOINTS = {MODEL: (BEST, CHECKPOINT), TEACHER: (CHECKPOINT, BEST)}  # looked for in a run folder, in order
ZOO_SEED = 0  # random weights of a bare zoo name are seeded, so untrained scores repeat
RUNS_ROOT = Path("runs")  # where --teacher NAME looks for the run of zoo model NAME


@dataclass(frozen=True)
class Spec:
    """A spec read by the rules above: one of a checkpoint file, an external name or a zoo name (random weights)."""

    kind: str  # "checkpoint", "external" or "zoo"
    name: str  # the zoo or external name; for a checkpoint, the path as text
    path: Path | None = None  # the checkpoint file


def parse_spec(spec: str, purpose: str = MODEL, runs_root: Path = RUNS_ROOT, option: str | None = None) -> Spec:
    """Read ``spec`` for ``purpose`` (MODEL or TEACHER) by the module's rules; FacebenchError naming ``option``
    (default ``--<purpose>``) when it names nothing."""
    option = option or f"--{purpose}"
    path = Path(spec)
    if not path.exists() and spec in list_external():
        return Spec("external", spec)
    if not path.exists() and spec in list_models():
        if purpose == MODEL:
            return Spec("zoo", spec)
        path = runs_root / spec
        if not path.is_dir():
            raise FacebenchError(f"{option} {spec}: no trained {spec} run at {path}; train it first "
                                 f"(facebench train --model {spec} --data DIR --out {path}) or pass a run folder or "
                                 "checkpoint")  # fmt: skip
    if path.is_dir():
        order = RUN_CHECKPOINTS[purpose]
        found = [path / name for name in order if (path / name).is_file()]
        if not found:
            raise FacebenchError(f"{option} {spec}: run folder {path} has no {' or '.join(order)}; train it first")
        path = found[0]
    if path.is_file():
        return Spec("checkpoint", str(path), path)
    if path.suffix or "/" in spec:
        raise FacebenchError(f"{option} {spec}: no such file or folder")
    raise FacebenchError(
        f"{option} {spec}: not a run folder, checkpoint file or zoo model; zoo models: {', '.join(list_models())}; "
        f"external: {', '.join(list_external())}"
    )


def model_from_checkpoint(
    checkpoint: Mapping[str, Any], source: str | Path, model_name: str | None = None
) -> nn.Module:
    """Build the checkpoint's architecture (or ``model_name``) and load its weights, strictly.

    Asking for another architecture than the one saved, or weights that do not fit it,
    raises FacebenchError naming both.
    """
    saved = checkpoint["model"]
    name = model_name or saved
    if name != saved:
        raise FacebenchError(f"{source}: checkpoint holds {saved} weights, not {name}; use --model {saved}")
    model = create_model(name, embedding_size=int(checkpoint["embedding_size"]))
    try:
        model.load_state_dict(checkpoint["state_dict"], strict=True)
    except RuntimeError as exc:
        lines = str(exc).splitlines()
        first = (lines[1] if len(lines) > 1 else lines[0]).strip()
        first = first if len(first) <= 160 else first[:157] + "..."
        raise FacebenchError(
            f"{source}: its state_dict does not fit the {name} architecture it names ({first}); "
            "the file was written by another model or facebench version"
        ) from None
    return model


def seeded_zoo_model(name: str) -> nn.Module:
    """Zoo model ``name`` with the random weights of seed ZOO_SEED, in eval mode (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ZOO_SEED)
        return create_model(name).eval()


@dataclass
class ResolvedModel:
    """A model ready for inference and where it came from."""

    model: nn.Module | ExternalModel
    name: str  # zoo architecture name (or external model name)
    source: str  # checkpoint path, "zoo" for random weights, or an external model's weights
    untrained: bool  # True for a bare zoo name: random weights, chance accuracy

    @property
    def label(self) -> str:
        """How outputs name it: 'r18 (untrained)' or 'r18 (runs/a/best.pt)'."""
        return f"{self.name} (untrained)" if self.untrained else f"{self.name} ({self.source})"


@dataclass
class ModelRecipe:
    """What ``--model`` names, checked and read (a checkpoint's file) but not built yet.

    ``build()`` makes it, so a caller can measure the memory of building the model alone.
    """

    name: str  # zoo architecture name (or external model name)
    source: str  # checkpoint path, "zoo", or "pretrained" (an external model names its file once built)
    untrained: bool
    build: Callable[[], nn.Module | ExternalModel]  # in eval mode, on the CPU
    external: bool = False


def model_recipe(spec: str, option: str = "--model") -> ModelRecipe:
    """``--model``/``--models``: the model ``spec`` names (module rules), read but not built."""
    parsed = parse_spec(spec, MODEL, option=option)
    if parsed.kind == "checkpoint":
        source = parsed.path
        checkpoint = load_checkpoint(source)
        weights = {key: checkpoint[key] for key in MODEL_KEYS}  # the optimizer state is not kept until build()
        return ModelRecipe(weights["model"], str(source), False,
                           lambda: model_from_checkpoint(weights, source).eval())  # fmt: skip
    if parsed.kind == "external":
        return ModelRecipe(spec, "pretrained", False, lambda: load_external(spec), external=True)
    return ModelRecipe(spec, "zoo", True, lambda: seeded_zoo_model(spec))


def resolve_model(spec: str) -> ResolvedModel:
    """``--model`` built: the model of ``model_recipe(spec)``, in eval mode on the CPU."""
    recipe = model_recipe(spec)
    model = recipe.build()
    source = model.source if recipe.external else recipe.source  # an external model knows its weights file
    return ResolvedModel(model, recipe.name, source, recipe.untrained)
