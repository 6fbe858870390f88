"""The small JSON file beside an exported model (``FILE.onnx.json``): how to feed it and where it came from.

It holds the input spec (size, channel order, normalisation), the embedding size, the
precision and quantisation, the source spec with its SHA-256, the facebench version and
the export's self-check. A foreign ONNX file has none; the user states its input spec.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError
from facebench.fileio import read_json, write_json_atomic
from facebench.input_spec import InputSpec

SIDECAR_SUFFIX = ".json"  # appended to the model file's full name: mfn.onnx -> mfn.onnx.json
REQUIRED = ("format", "precision", "input", "embedding_size", "source", "facebench_version")


def sidecar_path(model_file: str | Path) -> Path:
    """Where ``model_file``'s sidecar lives."""
    path = Path(model_file)
    return path.with_name(path.name + SIDECAR_SUFFIX)


def read_sidecar(model_file: str | Path) -> dict[str, Any] | None:
    """The sidecar of ``model_file`` checked for its required fields, or None when there is none."""
    path = sidecar_path(model_file)
    if not path.is_file():
        return None
    data = read_json(path)
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise FacebenchError(f"{path}: sidecar lacks {', '.join(missing)}; export the model again")
    try:
        InputSpec.from_dict(data["input"])
    except (KeyError, TypeError, ValueError) as exc:
        raise FacebenchError(f"{path}: its input spec is malformed ({exc}); export the model again") from None
    return data


def sidecar_input_spec(sidecar: dict[str, Any]) -> InputSpec:
    """The input spec a (checked) sidecar records."""
    return InputSpec.from_dict(sidecar["input"])


def write_sidecar(model_file: str | Path, fields: dict[str, Any]) -> Path:
    """Write ``fields`` as ``model_file``'s sidecar (atomically) and return its path."""
    path = sidecar_path(model_file)
    write_json_atomic(path, fields)
    return path
