"""One registry, one factory: every zoo model is reachable by name.

Builders register with ``@register_model`` (a duplicate name is a programming error);
``create_model`` builds by name and refuses unknown names with the list of valid ones.
External models (dlib: run by another library) have a registry of their own in
``facebench.external``, one layer up, so the zoo stays a leaf.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

from facebench.errors import FacebenchError
from facebench.input_spec import ARCFACE, InputSpec


@dataclass(frozen=True)
class ModelSpec:
    """A registered model: its builder, a one-line description for listings and the input it expects."""

    name: str
    family: str
    description: str
    builder: Callable[..., nn.Module]
    input_spec: InputSpec = ARCFACE  # the normalisation its pretrained weights (if any) were trained with


_REGISTRY: dict[str, ModelSpec] = {}


def register_model(name: str, *, family: str, description: str, input_spec: InputSpec = ARCFACE) -> Callable:
    """Decorator registering ``builder(embedding_size=..., **kw) -> nn.Module`` under ``name``."""

    def decorate(builder: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        if name in _REGISTRY:
            raise ValueError(f"model {name!r} is already registered")
        _REGISTRY[name] = ModelSpec(name, family, description, builder, input_spec)
        return builder

    return decorate


def list_models(pattern: str | None = None) -> list[str]:
    """Registered names in registration order, optionally filtered by a glob such as 'ir*'."""
    names = list(_REGISTRY)
    return [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names


def model_spec(name: str) -> ModelSpec:
    """The registry entry for ``name``; unknown names raise FacebenchError listing the valid ones."""
    try:
        return _REGISTRY[name]
    except KeyError:
        raise FacebenchError(f"unknown model {name!r}; valid names: {', '.join(list_models())}") from None


def create_model(name: str, embedding_size: int | None = None, **kwargs: object) -> nn.Module:
    """Build the zoo model ``name`` with a head of ``embedding_size`` outputs (default: the model's own,
    512 for most, 128 for mfn128), random weights; its ``input_spec`` attribute is the registered one."""
    spec = model_spec(name)
    if embedding_size is not None:
        kwargs["embedding_size"] = embedding_size
    model = spec.builder(**kwargs)
    model.input_spec = spec.input_spec
    return model
