"""``mfn128``: the MobileFaceNet layout of the public pretrained weights (foamliu/MobileFaceNet, MS1M, 128-d).

Its modules carry the names of that state dict (``conv1``, ``dw_conv``, ``features.N``,
``conv2``, ``gdconv``, ``conv3``, ``bn``), so the published file loads with
``strict=True`` as it comes. It differs from ``mbf`` (insightface's MobileFaceNet):
ReLU/ReLU6 instead of PReLU, MobileNetV2-style inverted residuals (15 blocks, 12 residual
sums), and a GDC head of depthwise 7x7 conv + BN -> 1x1 conv (with bias) -> BN. It was
trained on ImageNet-normalised RGB (``IMAGENET`` input spec), not the ArcFace convention.
"""

from __future__ import annotations

import torch
from torch import nn

from facebench.input_spec import IMAGENET
from facebench.models.common import FaceBackbone, init_weights
from facebench.models.registry import register_model

# (expansion t, output channels c, stride s) of features.0 ... features.14, read off the weights' shapes
_BLOCKS = ((2, 64, 2),) + ((2, 64, 1),) * 4 + ((4, 128, 2),) + ((2, 128, 1),) * 6 + ((4, 128, 2),) + ((2, 128, 1),) * 2


def _conv_bn_relu6(in_ch: int, out_ch: int, kernel: int, stride: int = 1, groups: int = 1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(in_ch, out_ch, kernel, stride, kernel // 2, groups=groups, bias=False),
        nn.BatchNorm2d(out_ch),
        nn.ReLU6(inplace=True),
    )


class _DepthwiseSeparable(nn.Module):
    """Depthwise 3x3 + BN + ReLU, pointwise 1x1 + BN + ReLU (the ``dw_conv`` block)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 3, 1, 1, groups=channels, bias=False)
        self.bn1 = nn.BatchNorm2d(channels)
        self.pointwise = nn.Conv2d(channels, channels, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.relu(self.bn1(self.depthwise(x)))
        return torch.relu(self.bn2(self.pointwise(x)))


class _InvertedResidual(nn.Module):
    """Expand 1x1 + BN + ReLU6, depthwise 3x3 + BN + ReLU6, project 1x1 + BN; identity added at stride 1."""

    def __init__(self, in_ch: int, out_ch: int, stride: int, expansion: int) -> None:
        super().__init__()
        hidden = in_ch * expansion
        self.conv = nn.Sequential(
            _conv_bn_relu6(in_ch, hidden, 1),
            _conv_bn_relu6(hidden, hidden, 3, stride, groups=hidden),
            nn.Conv2d(hidden, out_ch, 1, bias=False),
            nn.BatchNorm2d(out_ch),
        )
        self.use_residual = stride == 1 and in_ch == out_ch

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x + self.conv(x) if self.use_residual else self.conv(x)


class _GlobalDepthwise(nn.Module):
    """7x7 depthwise conv (no padding) + BN: the learnt spatial pooling of the GDC head."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.depthwise = nn.Conv2d(channels, channels, 7, groups=channels, bias=False)
        self.bn = nn.BatchNorm2d(channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.depthwise(x))


class MobileFaceNet128(FaceBackbone):
    """112x112 -> (N, 512, 7, 7) (``forward_features``: conv2's output) -> (N, embedding_size)."""

    def __init__(self, *, embedding_size: int = 128, dropout: float = 0.0) -> None:
        super().__init__()
        if dropout:
            raise ValueError("mfn128 has no dropout layer (its pretrained head has none)")
        self.conv1 = _conv_bn_relu6(3, 64, 3, 2)
        self.dw_conv = _DepthwiseSeparable(64)
        blocks, in_ch = [], 64
        for expansion, out_ch, stride in _BLOCKS:
            blocks.append(_InvertedResidual(in_ch, out_ch, stride, expansion))
            in_ch = out_ch
        self.features = nn.Sequential(*blocks)
        self.conv2 = _conv_bn_relu6(128, 512, 1)
        self.gdconv = _GlobalDepthwise(512)
        self.conv3 = nn.Conv2d(512, embedding_size, 1)
        self.bn = nn.BatchNorm2d(embedding_size)
        self.feature_channels = 512
        init_weights(self)

    @property
    def body(self) -> nn.Sequential:  # type: ignore[override]
        """Input -> last 7x7 map, as a view over the named modules (nothing new is registered)."""
        return nn.Sequential(self.conv1, self.dw_conv, self.features, self.conv2)

    @property
    def head(self) -> nn.Sequential:  # type: ignore[override]
        """7x7 map -> embedding: GDC, 1x1 conv, BN, flatten."""
        return nn.Sequential(self.gdconv, self.conv3, self.bn, nn.Flatten())

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv2(self.features(self.dw_conv(self.conv1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv3(self.gdconv(self.forward_features(x)))).flatten(1)


@register_model(
    "mfn128",
    family="mobile",
    description="MobileFaceNet of the public pretrained weights (ReLU6, 128-d, ImageNet-normalised input)",
    input_spec=IMAGENET,
)
def mfn128(**kw: object) -> MobileFaceNet128:
    return MobileFaceNet128(**kw)
