"""Mobile backbones: ``mobilenet`` (MobileNetV2 body) and ``mbf`` (MobileFaceNet).

Both end in a global depthwise-conv (GDC) head, because an E head on a wide 7x7 map
would hold more weights than the whole body.
"""

from __future__ import annotations

import torch
from torch import nn

from facebench.models.common import GlobalDepthwiseHead, FaceBackbone, init_weights
from facebench.models.registry import register_model


def _conv_bn_act(
    in_ch: int, out_ch: int, kernel: int = 1, stride: int = 1, groups: int = 1, act: type[nn.Module] | None = None
) -> nn.Sequential:
    """Conv (no bias) + BN, followed by ``act(out_ch)``-style activation when given."""
    layers: list[nn.Module] = [
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
    ]
    if act is nn.PReLU:
        layers.append(nn.PReLU(out_ch))
    elif act is not None:
        layers.append(act(inplace=True))
    return nn.Sequential(*layers)


class InvertedResidual(nn.Module):
    """Inverted bottleneck: 1x1 expand -> 3x3 depthwise (both activated) -> 1x1 linear projection.

    MobileNetV2 uses ReLU6 and skips the expansion conv when ``hidden == in_ch``; MobileFaceNet
    uses PReLU and always keeps it. A residual sum is added when input and output shapes match.
    """

    def __init__(
        self, in_ch: int, out_ch: int, hidden: int, stride: int, *, act: type[nn.Module], expand_conv: bool = True
    ) -> None:
        super().__init__()
        layers = [_conv_bn_act(in_ch, hidden, act=act)] if expand_conv else []
        layers += [_conv_bn_act(hidden, hidden, 3, stride, groups=hidden, act=act), _conv_bn_act(hidden, out_ch)]
        self.block = nn.Sequential(*layers)
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.block(x) if self.use_residual else self.block(x)


# MobileNetV2 stages (expansion t, channels c, repeats n, stride s), from the MobileNetV2 paper.
# The 160-channel stage runs at stride 1 instead of 2, so 112x112 ends at 7x7 (16x downsampling).
_MOBILENETV2_STAGES = ((1, 16, 1, 1), (6, 24, 2, 2), (6, 32, 3, 2), (6, 64, 4, 2), (6, 96, 3, 1), (6, 160, 3, 1), (6, 320, 1, 1))


class MobileNetV2Face(FaceBackbone):
    """MobileNetV2 (width 1.0) at 112x112 -> (N, 1280, 7, 7) -> GDC head."""

    def __init__(self, *, embedding_size: int = 512, dropout: float = 0.0) -> None:
        super().__init__()
        layers: list[nn.Module] = [_conv_bn_act(3, 32, 3, 2, act=nn.ReLU6)]
        in_ch = 32
        for expand, out_ch, repeats, stride in _MOBILENETV2_STAGES:
            for i in range(repeats):
                block_stride = stride if i == 0 else 1
                layers.append(
                    InvertedResidual(in_ch, out_ch, in_ch * expand, block_stride, act=nn.ReLU6, expand_conv=expand != 1)
                )
                in_ch = out_ch
        layers.append(_conv_bn_act(in_ch, 1280, act=nn.ReLU6))
        self.body = nn.Sequential(*layers)
        self.feature_channels = 1280
        self.head = GlobalDepthwiseHead(1280, embedding_size, dropout)
        init_weights(self)


class MobileFaceNet(FaceBackbone):
    """MobileFaceNet as insightface's ``mbf`` builds it (blocks (1, 4, 6, 2), width scale 2).

    Stem 3x3/2 conv and a grouped 3x3 conv at 56x56, then three stride-2 transitions (to 28,
    14 and 7 px), each followed by residual inverted bottlenecks, a 1x1 conv to 512 channels
    and the GDC head. All activations are PReLU. Hidden widths follow insightface's ``groups``.
    """

    def __init__(
        self,
        *,
        embedding_size: int = 512,
        dropout: float = 0.0,
        blocks: tuple[int, int, int, int] = (1, 4, 6, 2),
        scale: int = 2,
    ) -> None:
        super().__init__()
        narrow, wide = 64 * scale, 128 * scale
        layers: list[nn.Module] = [
            _conv_bn_act(3, narrow, 3, 2, act=nn.PReLU),
            _conv_bn_act(narrow, narrow, 3, 1, groups=64, act=nn.PReLU),
        ]
        if blocks[0] != 1:  # the larger variants use residual blocks at 56x56 instead of one conv
            layers[1:] = [self._bottleneck(narrow, narrow, 128, 1) for _ in range(blocks[0])]
        # (in, out, hidden of the stride-2 transition, hidden of the residual blocks, repeats)
        for in_ch, out_ch, hidden_down, hidden_res, repeats in (
            (narrow, narrow, 128, 128, blocks[1]),
            (narrow, wide, 256, 256, blocks[2]),
            (wide, wide, 512, 256, blocks[3]),
        ):
            layers.append(self._bottleneck(in_ch, out_ch, hidden_down, 2))
            layers += [self._bottleneck(out_ch, out_ch, hidden_res, 1) for _ in range(repeats)]
        layers.append(_conv_bn_act(wide, 512, act=nn.PReLU))
        self.body = nn.Sequential(*layers)
        self.feature_channels = 512
        self.head = GlobalDepthwiseHead(512, embedding_size, dropout)
        init_weights(self)

    @staticmethod
    def _bottleneck(in_ch: int, out_ch: int, hidden: int, stride: int) -> InvertedResidual:
        return InvertedResidual(in_ch, out_ch, hidden, stride, act=nn.PReLU)


@register_model("mobilenet", family="mobile", description="MobileNetV2 body (last stride 1 for 7x7), GDC head")
def mobilenet(**kw: object) -> MobileNetV2Face:
    return MobileNetV2Face(**kw)


@register_model("mbf", family="mobile", description="MobileFaceNet (insightface mbf), GDC head")
def mbf(**kw: object) -> MobileFaceNet:
    return MobileFaceNet(**kw)
