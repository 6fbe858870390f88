"""Margin heads: a normalised class-weight layer, margins as pure functions of cosine logits, a registry.

A head turns an embedding into class logits during training and is dropped at inference,
as in the ArcFace paper. It is split in two, as insightface's ``arcface_torch`` does:

- ``NormalizedLinear`` holds the class weights W (C, E) and returns cos(theta) =
  <e/|e|, w_c/|w_c|> in float32 (also under autocast), clamped to [-1, 1];
- a margin function ``(cosine, labels, scale, margin) -> logits`` changes only the
  target-class cosine, then multiplies everything by the scale s.

``MarginHead(embedding, labels)`` chains the two; with ``labels=None`` it returns the
plain scaled cosines s*cos(theta) (no margin), which knowledge distillation can use.

Margins (cosine c = cos(theta) of the target class, all other classes keep s*cos):

- ArcFace (Deng et al., CVPR 2019; insightface ``recognition/arcface_torch/losses.py``,
  ``easy_margin=False``): target logit s*cos(theta + m), computed as
  c*cos(m) - sin(theta)*sin(m) with sin(theta) = sqrt(1 - c^2). Where theta + m would
  pass pi, i.e. c <= cos(pi - m), cos(theta + m) would start to *increase* with theta; the
  target logit is then c - m*sin(pi - m) instead (insightface's ``target_logit - sinmm``),
  which stays monotone. Defaults s = 64, m = 0.5.
  Numerical safety: 1 - c^2 is clamped to >= 1e-12 before the square root, so the
  gradient stays finite at c = +-1 (it would be inf there, and ``torch.where`` turns
  0 * inf into NaN even in the branch it does not select).
- CosFace (Wang et al., CVPR 2018): target logit s*(c - m). Defaults s = 64, m = 0.35.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from facebench.errors import FacebenchError

MarginFn = Callable[[torch.Tensor, torch.Tensor, float, float], torch.Tensor]
_SIN_SQ_MIN = 1e-12  # floor of 1 - cos^2 under the square root (finite gradient at cos = +-1)


def _with_target(cosine: torch.Tensor, labels: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``cosine`` with each row's label column replaced by ``target`` (out of place, differentiable)."""
    one_hot = F.one_hot(labels, cosine.shape[1]).to(torch.bool)
    return torch.where(one_hot, target.unsqueeze(1), cosine)


def arcface_logits(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.5) -> torch.Tensor:
    """s*cos(theta + m) at the target class, s*cos(theta) elsewhere (rule in the module docstring)."""
    c = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
    sin = torch.sqrt((1.0 - c * c).clamp_min(_SIN_SQ_MIN))
    shifted = c * math.cos(margin) - sin * math.sin(margin)
    target = torch.where(c > math.cos(math.pi - margin), shifted, c - margin * math.sin(math.pi - margin))
    return scale * _with_target(cosine, labels, target)


def cosface_logits(cosine: torch.Tensor, labels: torch.Tensor, scale: float = 64.0, margin: float = 0.35) -> torch.Tensor:
    """s*(cos(theta) - m) at the target class, s*cos(theta) elsewhere."""
    c = cosine.gather(1, labels.unsqueeze(1)).squeeze(1)
    return scale * _with_target(cosine, labels, c - margin)


@dataclass(frozen=True)
class HeadSpec:
    """A registered margin: its function and default scale and margin."""

    name: str
    margin_fn: MarginFn
    scale: float
    margin: float
    description: str


_HEADS: dict[str, HeadSpec] = {}


def register_head(name: str, margin_fn: MarginFn, *, scale: float, margin: float, description: str) -> None:
    """Add a margin to the registry (a duplicate name is a programming error)."""
    if name in _HEADS:
        raise ValueError(f"head {name!r} is already registered")
    _HEADS[name] = HeadSpec(name, margin_fn, scale, margin, description)


register_head("arcface", arcface_logits, scale=64.0, margin=0.5, description="additive angular margin cos(theta+m)")
register_head("cosface", cosface_logits, scale=64.0, margin=0.35, description="additive cosine margin cos(theta)-m")


def list_heads() -> list[str]:
    """Registered head names, in registration order."""
    return list(_HEADS)


def head_spec(name: str) -> HeadSpec:
    """The registry entry for ``name``; unknown names raise FacebenchError listing the valid ones."""
    try:
        return _HEADS[name]
    except KeyError:
        raise FacebenchError(f"unknown head {name!r}; valid heads: {', '.join(list_heads())}") from None


class NormalizedLinear(nn.Module):
    """Class weights W (C, E); ``forward(e)`` -> cos(theta) (N, C), float32, clamped to [-1, 1]."""

    def __init__(self, embedding_size: int, num_classes: int) -> None:
        super().__init__()
        self.weight = nn.Parameter(torch.empty(num_classes, embedding_size))
        nn.init.normal_(self.weight, 0.0, 0.01)  # insightface's FC initialisation

    def forward(self, embedding: torch.Tensor) -> torch.Tensor:
        with torch.autocast(embedding.device.type, enabled=False):
            cosine = F.linear(F.normalize(embedding.float()), F.normalize(self.weight.float()))
        return cosine.clamp(-1.0, 1.0)


class MarginHead(nn.Module):
    """NormalizedLinear + a margin: (embedding, labels) -> logits; labels=None -> s*cos(theta), no margin."""

    def __init__(self, name: str, embedding_size: int, num_classes: int, *, scale: float, margin: float) -> None:
        super().__init__()
        self.name = name
        self.margin_fn = head_spec(name).margin_fn
        self.scale = float(scale)
        self.margin = float(margin)
        self.fc = NormalizedLinear(embedding_size, num_classes)

    @property
    def num_classes(self) -> int:
        return self.fc.weight.shape[0]

    def forward(self, embedding: torch.Tensor, labels: torch.Tensor | None = None) -> torch.Tensor:
        cosine = self.fc(embedding)
        if labels is None:
            return self.scale * cosine
        return self.margin_fn(cosine, labels, self.scale, self.margin)

    def extra_repr(self) -> str:
        return f"{self.name}, classes={self.num_classes}, s={self.scale}, m={self.margin}"


def create_head(
    name: str, embedding_size: int, num_classes: int, *, scale: float | None = None, margin: float | None = None
) -> MarginHead:
    """The head ``name`` over ``num_classes`` classes; scale/margin default to the registered values."""
    spec = head_spec(name)
    if num_classes < 2:
        raise FacebenchError(f"a {name} head needs at least 2 classes, the data has {num_classes}")
    return MarginHead(
        name, embedding_size, num_classes,
        scale=spec.scale if scale is None else scale, margin=spec.margin if margin is None else margin,
    )  # fmt: skip
