"""The checkpoint format shared by training and verification, and the ``--model`` resolver.

A checkpoint is a ``torch.save``d dict::

    {"format": "facebench-checkpoint", "format_version": 1,
     "model": "r18", "embedding_size": 512, "state_dict": {...},
     "config": {...},          # the resolved run config (JSON-ready)
     "provenance": {...},      # facebench/torch versions, git commit, time (facebench.provenance)
     "extra": {...}}           # optional: training state (optimizer, epoch, ...)

It holds only tensors and plain Python values, so it loads with ``weights_only=True``.
Saving is atomic (temporary file, then rename).
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch
from torch import nn

from facebench.errors import FacebenchError
from facebench.fileio import atomic_path

if TYPE_CHECKING:
    from facebench.models.external import ExternalModel

CHECKPOINT_FORMAT = "facebench-checkpoint"
CHECKPOINT_VERSION = 1
RUN_CHECKPOINTS = ("best.pt", "checkpoint.pt")  # looked for in a run folder, in this order
MODEL_KEYS = ("model", "embedding_size", "state_dict")  # what building the model reads
ZOO_SEED = 0  # random weights of a bare zoo name are seeded, so untrained scores repeat


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    model_name: str,
    embedding_size: int,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with its name, size, config and provenance to ``path`` atomically."""
    from facebench.provenance import environment

    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": model_name,
        "embedding_size": int(embedding_size),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": _plain(config),
        "provenance": _plain(environment()),
        "extra": dict(extra or {}),
    }
    with atomic_path(path) as tmp:
        torch.save(checkpoint, tmp)
    return Path(path)


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON round trip: plain dicts, lists, strings and numbers that ``weights_only`` loading accepts."""
    return json.loads(json.dumps(data, default=str))


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint onto the CPU; any unreadable or foreign file -> FacebenchError."""
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"checkpoint {path} not found; pass a run folder, a .pt file or a zoo model name")
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file (pickle, zip, EOF, ...)
        message = str(exc).strip()
        if "Weights only load failed" in message:
            reason = "it holds Python objects besides tensors and plain values, refused for safety"
        else:
            reason = (message.splitlines() or [type(exc).__name__])[0]
        raise FacebenchError(f"{path}: unreadable checkpoint ({reason}); re-save it or pick another file") from None
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise FacebenchError(
            f"{path}: not a facebench checkpoint (no format={CHECKPOINT_FORMAT!r}); "
            "write checkpoints with facebench.checkpoint.save_checkpoint"
        )
    if checkpoint.get("format_version", 0) > CHECKPOINT_VERSION:
        raise FacebenchError(
            f"{path}: checkpoint format version {checkpoint['format_version']} is newer than this facebench "
            f"reads ({CHECKPOINT_VERSION}); upgrade facebench"
        )
    missing = [k for k in MODEL_KEYS if k not in checkpoint]
    if missing:
        raise FacebenchError(f"{path}: checkpoint lacks {', '.join(missing)}; it is incomplete")
    return checkpoint


def model_from_checkpoint(
    checkpoint: Mapping[str, Any], source: str | Path, model_name: str | None = None
) -> nn.Module:
    """Build the checkpoint's architecture (or ``model_name``) and load its weights, strictly.

    Asking for another architecture than the one saved, or weights that do not fit it,
    raises FacebenchError naming both.
    """
    from facebench.models import create_model

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


def model_recipe(spec: str) -> ModelRecipe:
    """``--model``: a run folder (its best.pt, else checkpoint.pt), a checkpoint file, a zoo or an external name.

    A zoo name alone builds seeded random weights, flagged ``untrained``. An external name
    (``dlib``) builds that pretrained model (facebench.models.external), or says how to
    install it. Unknown names and missing files raise FacebenchError here.
    """
    from facebench.models import create_model, list_models
    from facebench.models.external import load_external
    from facebench.models.registry import list_external

    path = Path(spec)
    if path.is_dir():
        found = [path / name for name in RUN_CHECKPOINTS if (path / name).is_file()]
        if not found:
            raise FacebenchError(f"run folder {path} has no {' or '.join(RUN_CHECKPOINTS)}; train it first")
        path = found[0]
    if path.is_file():
        checkpoint, source = load_checkpoint(path), path
        weights = {key: checkpoint[key] for key in MODEL_KEYS}  # the optimizer state is not kept until build()
        return ModelRecipe(weights["model"], str(path), False,
                           lambda: model_from_checkpoint(weights, source).eval())  # fmt: skip
    if spec in list_external():
        return ModelRecipe(spec, "pretrained", False, lambda: load_external(spec), external=True)
    if spec in list_models():

        def seeded() -> nn.Module:
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(ZOO_SEED)
                return create_model(spec).eval()

        return ModelRecipe(spec, "zoo", True, seeded)
    if path.suffix or "/" in spec:
        raise FacebenchError(f"--model {spec}: no such file or folder")
    raise FacebenchError(
        f"--model {spec}: not a run folder, checkpoint file or zoo model; zoo models: {', '.join(list_models())}; "
        f"external: {', '.join(list_external())}"
    )


def resolve_model(spec: str) -> ResolvedModel:
    """``--model`` built: the model of ``model_recipe(spec)``, in eval mode on the CPU."""
    recipe = model_recipe(spec)
    model = recipe.build()
    source = model.source if recipe.external else recipe.source  # an external model knows its weights file
    return ResolvedModel(model, recipe.name, source, recipe.untrained)
