"""Pieces shared by every backbone: the base class and the output heads."""

from __future__ import annotations

import torch
from torch import nn

from facebench.input_spec import ARCFACE, InputSpec

FEATURE_MAP_SIZE = 7  # last feature map is 7x7 for a 112x112 input in every zoo model


class FaceBackbone(nn.Module):
    """A face feature extractor: ``forward_features`` -> (N, C, 7, 7), ``forward`` -> (N, E).

    Subclasses build ``self.body`` (input -> last feature map) and ``self.head``
    (feature map -> embedding) and set ``feature_channels``.
    """

    body: nn.Module
    head: nn.Module
    feature_channels: int
    input_spec: InputSpec = ARCFACE  # how its input is normalised (create_model sets the registered one)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Last feature map, the one adversarial KD compares."""
        return self.body(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Embedding (not L2-normalised; verification normalises)."""
        return self.head(self.body(x))


class EmbeddingHead(nn.Sequential):
    """ArcFace output "E": BN -> Dropout -> FC(C*7*7 -> E) -> BN1d.

    As in insightface's iresnet, the final BN1d scale is fixed at 1 (only its shift
    and running statistics are learnt), which keeps embedding norms comparable.
    """

    def __init__(self, channels: int, embedding_size: int, dropout: float = 0.0) -> None:
        bn = nn.BatchNorm1d(embedding_size)
        nn.init.constant_(bn.weight, 1.0)
        bn.weight.requires_grad = False
        super().__init__(
            nn.BatchNorm2d(channels),
            nn.Dropout(dropout),
            nn.Flatten(),
            nn.Linear(channels * FEATURE_MAP_SIZE * FEATURE_MAP_SIZE, embedding_size),
            bn,
        )


class GlobalDepthwiseHead(nn.Sequential):
    """MobileFaceNet's "GDC" output: 7x7 depthwise conv + BN -> FC(C -> E, no bias) -> BN1d.

    Replaces global average pooling with a learnt per-channel spatial weighting, which the
    MobileFaceNet paper shows matters for faces (the centre and corners are not equal).
    """

    def __init__(self, channels: int, embedding_size: int, dropout: float = 0.0) -> None:
        super().__init__(
            nn.Conv2d(channels, channels, FEATURE_MAP_SIZE, groups=channels, bias=False),
            nn.BatchNorm2d(channels),
            nn.Flatten(),
            nn.Dropout(dropout),
            nn.Linear(channels, embedding_size, bias=False),
            nn.BatchNorm1d(embedding_size),
        )


def init_weights(module: nn.Module) -> None:
    """Kaiming-normal convolutions and linears, unit-scale zero-shift norms (torchvision's scheme)."""
    for m in module.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out", nonlinearity="relu")
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, 0, 0.01)
        elif isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            if m.weight.requires_grad:
                nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        if isinstance(m, (nn.Conv2d, nn.Linear)) and m.bias is not None:
            nn.init.zeros_(m.bias)
