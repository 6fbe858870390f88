"""The modules of adversarial feature-map KD: a transfer layer on the student's maps and a discriminator.

After Chung, Park, Kim, Kwak, "Feature-map-level Online Adversarial Knowledge
Distillation" (ICML 2020): a discriminator learns to tell the teacher's last feature map
("real") from the student's ("fake"), and the student learns to fool it. Where the
channel counts differ, a 1x1 convolution + BN maps the student's C_s channels to the
teacher's C_t (the paper's transfer layer); it trains with the student and, like the
margin head, is not part of the saved model.

The discriminator here is a small convolutional critic on the 7x7 maps: two 3x3 stride-2
convolutions with LeakyReLU(0.2) (7x7 -> 4x4 -> 2x2) and a linear layer to one raw score.
The paper's exact layer widths were not checked against its text (only its abstract and
introduction were reachable from here), so this design is facebench's. It has no batch
normalisation on purpose: real and fake maps reach it in separate calls, and batch
statistics would let it tell the two apart by batch rather than by sample.
"""

from __future__ import annotations

import torch
from torch import nn


def make_transfer(student_channels: int, teacher_channels: int) -> nn.Module:
    """1x1 conv + BN from C_s to C_t channels, or the identity when they agree."""
    if student_channels == teacher_channels:
        return nn.Identity()
    return nn.Sequential(
        nn.Conv2d(student_channels, teacher_channels, kernel_size=1, bias=False),
        nn.BatchNorm2d(teacher_channels),
    )


class Discriminator(nn.Module):
    """(N, C, H, W) feature maps -> (N,) raw real/fake scores."""

    def __init__(self, channels: int, hidden: int = 128, map_size: int = 7) -> None:
        super().__init__()
        size = (map_size + 1) // 2  # after one stride-2, pad-1 3x3 convolution
        size = (size + 1) // 2
        self.net = nn.Sequential(
            nn.Conv2d(channels, hidden, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Conv2d(hidden, hidden // 2, 3, stride=2, padding=1), nn.LeakyReLU(0.2),
            nn.Flatten(),
            nn.Linear(hidden // 2 * size * size, 1),
        )  # fmt: skip

    def forward(self, maps: torch.Tensor) -> torch.Tensor:
        return self.net(maps).squeeze(1)
