"""One registry, one factory: every zoo model is reachable by name.

Builders register with ``@register_model`` (a duplicate name is a programming error);
``create_model`` builds by name and refuses unknown names with the list of valid ones.

A second, smaller table holds *external* models (``register_external``): pretrained
models run by another library (dlib), which embed whole images with their own
preprocessing and have no forward_features, trainable weights, params or MAC counts
here. They are resolved by ``facebench.models.external.load_external``, never built by
``create_model``.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from facebench.errors import FacebenchError


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder and a one-line description for listings."""

    name: str
    family: str
    description: str
    builder: Callable[..., nn.Module]


@dataclass(frozen=True)
class ExternalSpec:
    """A registered external model: ``loader()`` imports its library and returns a loaded model."""

    name: str
    description: str
    embedding_size: int
    loader: Callable[[], object]  # -> facebench.models.external.ExternalModel


_REGISTRY: dict[str, ModelSpec] = {}
_EXTERNAL: dict[str, ExternalSpec] = {}


def register_model(name: str, *, family: str, description: str) -> Callable:
    """Decorator registering ``builder(embedding_size=512, **kw) -> nn.Module`` under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY or name in _EXTERNAL:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name=name, family=family, description=description, builder=builder)
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in registration order, optionally filtered by a glob such as 'ir*'."""
    names = list(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def register_external(spec: ExternalSpec) -> ExternalSpec:
    """Add an external model to its table (a name taken by any model is a programming error)."""
    if spec.name in _REGISTRY or spec.name in _EXTERNAL:
        raise ValueError(f"model {spec.name!r} is already registered")
    _EXTERNAL[spec.name] = spec
    return spec


def list_external() -> list[str]:
    """Registered external model names, in registration order."""
    return list(_EXTERNAL)


def external_spec(name: str) -> ExternalSpec | None:
    """The external model called ``name``, or None when it is not one."""
    return _EXTERNAL.get(name)


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; unknown names raise FacebenchError listing the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        if name in _EXTERNAL:
            raise FacebenchError(
                f"{name} is an external pretrained model ({_EXTERNAL[name].description}): it works with verify, "
                f"profile and as a distill teacher, but has no zoo architecture to build or train"
            ) from None
        raise FacebenchError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None


def create_model(name: str, embedding_size: int = 512, **kwargs: object) -> nn.Module:
    """Build the zoo model ``name`` with a head of ``embedding_size`` outputs (random weights)."""
    return model_spec(name).builder(embedding_size=embedding_size, **kwargs)
