"""What a model argument names: the one resolver behind ``--model``, ``--models`` and ``--teacher``.

A spec is read by these rules, an existing file or folder first, then the names:

- **run folder**: for ``--model``/``--models`` (verify, profile) its ``best.pt``,
  else ``checkpoint.pt``: the weights that validated best. For ``--teacher`` (distill) its
  ``checkpoint.pt``, else ``best.pt``: the final weights, the only file that also holds the
  margin head (``kd`` needs its logits).
- **checkpoint file** (``.pt``): that file, for every option.
- **deployed file** (``.onnx``, OpenVINO ``.xml``): run by ``--runtime`` (default: the
  file's own, ONNX Runtime or OpenVINO), its input spec from its sidecar, else from
  ``--input-size/--input-mean/--input-std/--bgr`` (default: the ArcFace convention); for
  every option (a teacher of embeddings only).
- **external name** (``dlib``): that pretrained model as it comes, for every option
  (a teacher of embeddings only).
- **zoo name with ``--weights FILE``** (``mfn128 --weights mobilefacenet.pt``): the
  architecture with those weights (a plain state dict or a facebench checkpoint, loaded
  strictly; keys or shapes that differ are listed), for every option.
- **zoo name** (``r18``): for ``--model``/``--models`` the architecture with seeded random
  weights, labelled *untrained* (the chance baseline). For ``--teacher`` the trained run
  ``runs/<name>/``, read as a run folder (a random teacher teaches nothing).

Anything else is refused in one line naming the option. The options differ only where the
purpose does: a verified model is judged by its best weights, a teacher must be the one
file whose head and hash a distilled run records. ``--weights`` goes with a zoo name only,
``--runtime onnxruntime|openvino`` and ``--input-*`` with a deployed file only.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebench.checkpoint import MODEL_KEYS, load_checkpoint, load_state_dict_file
from facebench.deploy import DeployedModel, is_deployed_file, load_deployed
from facebench.errors import FacebenchError
from facebench.external import ExternalModel, list_external, load_external
from facebench.input_spec import InputSpec
from facebench.models import create_model, list_models
from facebench.runfolder import BEST, CHECKPOINT, file_sha256

MODEL, TEACHER = "model", "teacher"  # the two purposes a spec is resolved for (the option it came from)
RUN_CHECKPOINTS = {MODEL: (BEST, CHECKPOINT), TEACHER: (CHECKPOINT, BEST)}  # looked for in a run folder, in order
ZOO_SEED = 0  # random weights of a bare zoo name are seeded, so untrained scores repeat
RUNS_ROOT = Path("runs")  # where --teacher NAME looks for the run of zoo model NAME


@dataclass(frozen=True)
class Spec:
    """A spec read by the rules above: one of a checkpoint file, an external name or a zoo name (random weights)."""

    kind: str  # "checkpoint", "deployed", "external", "weights" (zoo name + weights file) or "zoo"
    name: str  # the zoo or external name; for a file, the path as text
    path: Path | None = None  # the checkpoint, deployed or weights file


@dataclass(frozen=True)
class ModelOptions:
    """The options beside a model spec that choose its weights, runtime and input (``None``: not given)."""

    weights: Path | None = None  # --weights: a state dict for a zoo name
    runtime: str | None = None  # --runtime: torch, onnxruntime or openvino
    input_spec: InputSpec | None = None  # --input-size/--input-mean/--input-std/--bgr: a foreign deployed file's

    def check(self, parsed: Spec, option: str) -> None:
        """Refuse an option that does not apply to the kind of spec it came with, in one line."""
        if self.weights is not None and parsed.kind not in ("zoo", "weights"):
            raise FacebenchError(f"--weights goes with a zoo name (e.g. {option} mfn128 --weights FILE); "
                                 f"{parsed.name} is a {parsed.kind} spec with weights of its own")  # fmt: skip
        if parsed.kind != "deployed":
            if self.runtime not in (None, "torch"):
                raise FacebenchError(f"--runtime {self.runtime} runs .onnx/.xml files; export {parsed.name} first "
                                     f"(facebench export --model {parsed.name} --out FILE.onnx)")  # fmt: skip
            if self.input_spec is not None:
                raise FacebenchError("--input-size/--input-mean/--input-std/--bgr describe a foreign .onnx/.xml file; "
                                     f"{parsed.name} brings its own input spec")  # fmt: skip


def parse_spec(spec: str, purpose: str = MODEL, runs_root: Path = RUNS_ROOT, option: str | None = None,
               weights: Path | None = None) -> Spec:  # fmt: skip
    """Read ``spec`` for ``purpose`` (MODEL or TEACHER) by the module's rules; FacebenchError naming ``option``
    (default ``--<purpose>``) when it names nothing. With ``weights`` a zoo name is that architecture with them."""
    option = option or f"--{purpose}"
    path = Path(spec)
    if path.is_file() and is_deployed_file(path):
        return Spec("deployed", spec, path)
    if not path.exists() and spec in list_external():
        return Spec("external", spec)
    if not path.exists() and spec in list_models():
        if weights is not None:
            return Spec("weights", spec, Path(weights))
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


def model_with_weights(name: str, weights: Path, state: Mapping[str, torch.Tensor] | None = None) -> nn.Module:
    """Zoo model ``name`` with the state dict in ``weights`` (its embedding size read off the weights), strictly;
    keys or shapes that differ -> FacebenchError listing them. ``state``: that file's state dict, already read."""
    state = load_state_dict_file(weights) if state is None else state
    model = seeded_zoo_model(name)
    expected = model.state_dict()
    embedding_size = _embedding_size(state, expected)
    if embedding_size is not None and embedding_size != _embedding_size(expected, expected):
        model = create_model(name, embedding_size=embedding_size).eval()
        expected = model.state_dict()
    missing = [k for k in expected if k not in state]
    unexpected = [k for k in state if k not in expected]
    shapes = [f"{k} {tuple(state[k].shape)} vs {tuple(v.shape)}" for k, v in expected.items()
              if k in state and state[k].shape != v.shape]  # fmt: skip
    if missing or unexpected or shapes:
        parts = [f"{label} ({len(keys)}): {', '.join(keys[:3])}{', ...' if len(keys) > 3 else ''}"
                 for label, keys in (("missing", missing), ("unexpected", unexpected), ("shape differs", shapes))
                 if keys]  # fmt: skip
        raise FacebenchError(f"--weights {weights}: does not fit {name}; " + "; ".join(parts))
    model.load_state_dict(state, strict=True)
    return model


def _embedding_size(state: Mapping[str, torch.Tensor], reference: Mapping[str, torch.Tensor]) -> int | None:
    """Output size of the last weight tensor that the reference architecture also has (the embedding layer)."""
    for key in reversed(list(reference)):
        if key in state and key.endswith("weight") and state[key].ndim >= 2:
            return int(state[key].shape[0])
    return None


def seeded_zoo_model(name: str) -> nn.Module:
    """Zoo model ``name`` with the random weights of seed ZOO_SEED, in eval mode (the global RNG is left as it was)."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(ZOO_SEED)
        return create_model(name).eval()


@dataclass
class ResolvedModel:
    """A model ready for inference and where it came from."""

    model: nn.Module | ExternalModel
    name: str  # zoo architecture name (or external model name, or a deployed file's name)
    source: str  # checkpoint, weights or deployed file, "zoo" for random weights, or an external model's weights
    untrained: bool  # True for a bare zoo name: random weights, chance accuracy
    pretrained: bool = False  # weights from elsewhere (--weights, a deployed file, an external model): no run folder

    @property
    def label(self) -> str:
        """How outputs name it: 'r18 (untrained)', 'r18 (runs/a/best.pt)', 'm.onnx (onnxruntime int8)'."""
        if isinstance(self.model, DeployedModel):
            return f"{self.name} ({self.model.runtime} {self.model.precision})"
        return f"{self.name} (untrained)" if self.untrained else f"{self.name} ({self.source})"


@dataclass
class ModelRecipe:
    """What ``--model`` names, checked and read (a checkpoint's file) but not built yet.

    ``build()`` makes it, so a caller can measure the memory of building the model alone.
    """

    name: str  # zoo architecture name (or external model name, or a deployed file's name)
    source: str  # checkpoint/weights/deployed path, "zoo", or "pretrained" (an external model names its file once built)
    untrained: bool
    build: Callable[[], nn.Module | ExternalModel]  # in eval mode, on the CPU
    external: bool = False
    architecture: str | None = None  # the zoo architecture whose layers it runs, where known (for counts)
    sha256: str | None = None  # of the weights or deployed file
    runtime: str = "torch"  # what runs it: torch, onnxruntime, openvino, or "external" (its own library)
    pretrained: bool = False  # weights from elsewhere (--weights, a deployed file, an external model)

    def __post_init__(self) -> None:
        if self.external:
            self.runtime = "external"


def model_recipe(spec: str, option: str = "--model", options: ModelOptions = ModelOptions()) -> ModelRecipe:
    """``--model``/``--models``: the model ``spec`` names (module rules), read but not built."""
    parsed = parse_spec(spec, MODEL, option=option, weights=options.weights)
    options.check(parsed, option)
    if parsed.kind == "deployed":
        path = parsed.path
        model = load_deployed(path, options.runtime, options.input_spec)  # checks runtime, sidecar and input spec
        source = model.sidecar.get("source", {}) if model.sidecar else {}
        return ModelRecipe(path.name, str(path), False, lambda: model, architecture=source.get("model"),
                           sha256=file_sha256(path), runtime=model.runtime, pretrained=True)  # fmt: skip
    if parsed.kind == "weights":
        weights = parsed.path
        state = load_state_dict_file(weights)  # read once; every build() loads it into a fresh model
        model_with_weights(parsed.name, weights, state)  # refuses a file that does not fit, before any work
        return ModelRecipe(parsed.name, str(weights), False, lambda: model_with_weights(parsed.name, weights, state),
                           architecture=parsed.name, sha256=file_sha256(weights), pretrained=True)  # fmt: skip
    if parsed.kind == "checkpoint":
        source = parsed.path
        checkpoint = load_checkpoint(source)
        weights = {key: checkpoint[key] for key in MODEL_KEYS}  # the optimizer state is not kept until build()
        return ModelRecipe(weights["model"], str(source), False,
                           lambda: model_from_checkpoint(weights, source).eval(), architecture=weights["model"])
    if parsed.kind == "external":
        return ModelRecipe(spec, "pretrained", False, lambda: load_external(spec), external=True, pretrained=True)
    return ModelRecipe(spec, "zoo", True, lambda: seeded_zoo_model(spec), architecture=spec)


def resolve_model(spec: str, options: ModelOptions = ModelOptions()) -> ResolvedModel:
    """``--model`` built: the model of ``model_recipe(spec, options=options)``, in eval mode on the CPU."""
    recipe = model_recipe(spec, options=options)
    model = recipe.build()
    source = model.source if recipe.external else recipe.source  # an external model knows its weights file
    return ResolvedModel(model, recipe.name, source, recipe.untrained, recipe.pretrained)
