"""IResNet ir18/ir34/ir50/ir100: the ArcFace paper's improved ResNet, as insightface builds it.

Block (pre-activation style): BN -> 3x3 conv -> BN -> PReLU -> 3x3 conv (strided) -> BN,
plus a 1x1 strided projection shortcut. Stem: 3x3 stride-1 conv + BN + PReLU at 112x112;
every stage halves the map (112 -> 56 -> 28 -> 14 -> 7). Output: the E head.
"""

from __future__ import annotations

import torch
from torch import nn

from facebench.models.common import EmbeddingHead, FaceBackbone, init_weights
from facebench.models.registry import register_model


class IBasicBlock(nn.Module):
    """insightface's IBasicBlock: BN-Conv-BN-PReLU-Conv-BN with a residual sum."""

    def __init__(self, in_ch: int, planes: int, stride: int) -> None:
        super().__init__()
        self.residual = nn.Sequential(
            nn.BatchNorm2d(in_ch),
            nn.Conv2d(in_ch, planes, 3, 1, 1, bias=False),
            nn.BatchNorm2d(planes),
            nn.PReLU(planes),
            nn.Conv2d(planes, planes, 3, stride, 1, bias=False),
            nn.BatchNorm2d(planes),
        )
        self.shortcut: nn.Module = nn.Identity()
        if stride != 1 or in_ch != planes:
            self.shortcut = nn.Sequential(nn.Conv2d(in_ch, planes, 1, stride, bias=False), nn.BatchNorm2d(planes))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.residual(x) + self.shortcut(x)


class IResNet(FaceBackbone):
    """Stem (3x3/1 + BN + PReLU) -> four stride-2 stages of IBasicBlocks -> E head."""

    def __init__(
        self, layers: tuple[int, int, int, int], *, embedding_size: int = 512, dropout: float = 0.0
    ) -> None:
        super().__init__()
        stages: list[nn.Module] = [nn.Conv2d(3, 64, 3, 1, 1, bias=False), nn.BatchNorm2d(64), nn.PReLU(64)]
        in_ch = 64
        for planes, depth in zip((64, 128, 256, 512), layers, strict=True):
            for i in range(depth):
                stages.append(IBasicBlock(in_ch, planes, 2 if i == 0 else 1))
                in_ch = planes
        self.body = nn.Sequential(*stages)
        self.feature_channels = in_ch
        self.head = EmbeddingHead(in_ch, embedding_size, dropout)
        init_weights(self)


@register_model("ir18", family="iresnet", description="IResNet-18 (2,2,2,2), ArcFace/insightface")
def ir18(**kw: object) -> IResNet:
    return IResNet((2, 2, 2, 2), **kw)


@register_model("ir34", family="iresnet", description="IResNet-34 (3,4,6,3), ArcFace/insightface")
def ir34(**kw: object) -> IResNet:
    return IResNet((3, 4, 6, 3), **kw)


@register_model("ir50", family="iresnet", description="IResNet-50 (3,4,14,3), ArcFace/insightface")
def ir50(**kw: object) -> IResNet:
    return IResNet((3, 4, 14, 3), **kw)


@register_model("ir100", family="iresnet", description="IResNet-100 (3,13,30,3), ArcFace/insightface")
def ir100(**kw: object) -> IResNet:
    return IResNet((3, 13, 30, 3), **kw)
