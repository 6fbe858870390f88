"""The table of external models: pretrained face models run by another library, found by name.

Registering a name that a zoo model or another external model already has is a
programming error; ``load_external`` imports the model's library only when asked.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from facebench.errors import FacebenchError
from facebench.external.base import ExternalModel
from facebench.models import list_models


@dataclass(frozen=True)
class ExternalSpec:
    """A registered external model: ``loader()`` imports its library and returns a loaded model."""

    name: str
    description: str
    embedding_size: int
    loader: Callable[[], ExternalModel]


_EXTERNAL: dict[str, ExternalSpec] = {}


def register_external(spec: ExternalSpec) -> ExternalSpec:
    """Add an external model to the table (a name taken by any model is a programming error)."""
    if spec.name in _EXTERNAL or spec.name in list_models():
        raise ValueError(f"model {spec.name!r} is already registered")
    _EXTERNAL[spec.name] = spec
    return spec


def list_external() -> list[str]:
    """Registered external model names, in registration order."""
    return list(_EXTERNAL)


def external_spec(name: str) -> ExternalSpec | None:
    """The external model called ``name``, or None when it is not one."""
    return _EXTERNAL.get(name)


def refuse_external(name: str) -> None:
    """Where a zoo architecture is needed (train, distill --student), say why an external name cannot be one."""
    spec = _EXTERNAL.get(name)
    if spec is not None:
        raise FacebenchError(
            f"{name} is an external pretrained model ({spec.description}): it works with verify, "
            f"profile and as a distill teacher, but has no zoo architecture to build or train"
        )


def load_external(name: str) -> ExternalModel:
    """Load the registered external model ``name`` (FacebenchError when unknown or not installed)."""
    spec = external_spec(name)
    if spec is None:
        raise FacebenchError(f"unknown external model {name!r}; external models: {', '.join(list_external())}")
    model = spec.loader()
    if not isinstance(model, ExternalModel):
        raise TypeError(f"loader of {name!r} returned {type(model).__name__}, not an ExternalModel")
    return model
