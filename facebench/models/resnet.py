"""ResNet r18/r34/r50/r101 for 112x112 faces (the study's teacher and student).

torchvision's blocks and stem (7x7 stride-2 conv) with the max-pool removed, so a
112x112 crop leaves layer4 at 7x7 instead of 4x4, followed by the ArcFace "E" head.
"""

from __future__ import annotations

import torch
from torch import nn

from facebench.models.common import EmbeddingHead, FaceBackbone, init_weights
from facebench.models.registry import register_model


def _conv_bn(in_ch: int, out_ch: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(in_ch, out_ch, kernel, stride, padding=kernel // 2, bias=False), nn.BatchNorm2d(out_ch)]


def _shortcut(in_ch: int, out_ch: int, stride: int) -> nn.Module:
    """Identity, or a strided 1x1 projection + BN when the shape changes."""
    if stride == 1 and in_ch == out_ch:
        return nn.Identity()
    return nn.Sequential(*_conv_bn(in_ch, out_ch, 1, stride))


class BasicBlock(nn.Module):
    """Two 3x3 convs (torchvision BasicBlock)."""

    expansion = 1

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            *_conv_bn(in_ch, planes, 3, stride), nn.ReLU(inplace=True), *_conv_bn(planes, planes, 3)
        )
        self.shortcut = _shortcut(in_ch, planes, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class Bottleneck(nn.Module):
    """1x1 reduce, 3x3 (strided, as torchvision v1.5), 1x1 expand x4."""

    expansion = 4

    def __init__(self, in_ch: int, planes: int, stride: int = 1) -> None:
        super().__init__()
        out_ch = planes * self.expansion
        self.residual = nn.Sequential(
            *_conv_bn(in_ch, planes, 1), nn.ReLU(inplace=True),
            *_conv_bn(planes, planes, 3, stride), nn.ReLU(inplace=True),
            *_conv_bn(planes, out_ch, 1),
        )  # fmt: skip
        self.shortcut = _shortcut(in_ch, out_ch, stride)
        self.relu = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.residual(x) + self.shortcut(x))


class FaceResNet(FaceBackbone):
    """Stem (7x7/2, no max-pool) -> four stages (strides 1, 2, 2, 2) -> E head."""

    def __init__(
        self,
        block: type[BasicBlock | Bottleneck],
        layers: tuple[int, int, int, int],
        *,
        embedding_size: int = 512,
        dropout: float = 0.0,
    ) -> None:
        super().__init__()
        stages: list[nn.Module] = [*_conv_bn(3, 64, 7, 2), nn.ReLU(inplace=True)]
        in_ch = 64
        for planes, depth, stride in zip((64, 128, 256, 512), layers, (1, 2, 2, 2), strict=True):
            for i in range(depth):
                stages.append(block(in_ch, planes, stride if i == 0 else 1))
                in_ch = planes * block.expansion
        self.body = nn.Sequential(*stages)
        self.feature_channels = in_ch
        self.head = EmbeddingHead(in_ch, embedding_size, dropout)
        init_weights(self)


@register_model("r18", family="resnet", description="ResNet-18, basic blocks (2,2,2,2)")
def r18(**kw: object) -> FaceResNet:
    return FaceResNet(BasicBlock, (2, 2, 2, 2), **kw)


@register_model("r34", family="resnet", description="ResNet-34, basic blocks (3,4,6,3)")
def r34(**kw: object) -> FaceResNet:
    return FaceResNet(BasicBlock, (3, 4, 6, 3), **kw)


@register_model("r50", family="resnet", description="ResNet-50, bottleneck blocks (3,4,6,3)")
def r50(**kw: object) -> FaceResNet:
    return FaceResNet(Bottleneck, (3, 4, 6, 3), **kw)


@register_model("r101", family="resnet", description="ResNet-101, bottleneck blocks (3,4,23,3)")
def r101(**kw: object) -> FaceResNet:
    return FaceResNet(Bottleneck, (3, 4, 23, 3), **kw)
