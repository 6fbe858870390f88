"""RetinaFace (Deng et al., 2019/2020, "RetinaFace: Single-shot Multi-level Face Localisation
in the Wild") with the MobileNet-0.25 backbone, on the MIT weights of biubug6/Pytorch_Retinaface.

The network, written here so the shipped state dict loads with ``strict=True``:
1. ``body``: MobileNet-V1 at width 0.25 (stage1 stride 8 -> 64 ch, stage2 stride 16 -> 128 ch,
   stage3 stride 32 -> 256 ch; depthwise-separable 3x3 convs, BN, LeakyReLU 0.1);
2. ``fpn``: 1x1 lateral convs to 64 channels, top-down nearest upsampling + 3x3 merge convs;
3. ``ssh1..3``: SSH context modules (3x3, 5x5 and 7x7 receptive fields as stacked 3x3s);
4. per level, three 1x1 heads over two square anchors per cell: face/background logits,
   box offsets, and ten landmark offsets.

Decoding (``prior_boxes``, ``decode``): anchors centred on each cell, (j + 0.5) * stride,
sizes 16/32, 64/128, 256/512 px at strides 8/16/32; centre offsets times 0.1 * anchor size,
log size ratios times 0.2; landmark offsets like centres. Input is BGR minus (104, 117, 123),
unscaled. Faces with face probability >= SCORE_THRESHOLD survive, then NMS at IoU 0.4.
``detect_batch`` runs several same-sized frames in one forward pass (CPU or CUDA).
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebench.data.detectors import Face, check_rgb, downscale
from facebench.data.landmarks import correct_landmarks
from facebench.data.mtcnn import nms
from facebench.data.packaged_weights import checked_weight_path

WEIGHTS_FILE = "mobilenet0.25_Final.pth"
STRIDES = (8, 16, 32)
ANCHOR_SIZES = ((16, 32), (64, 128), (256, 512))  # px, two square anchors per cell and stride
VARIANCES = (0.1, 0.2)  # centre / landmark offsets, log size ratios
BGR_MEAN = (104.0, 117.0, 123.0)
SCORE_THRESHOLD = 0.6  # the original's visualisation threshold (0.02 is for WIDER FACE AP only)
NMS_IOU = 0.4
PRE_NMS_TOP_K = 5000


def _conv_bn(inp: int, out: int, stride: int = 1, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 3, stride, 1, bias=False), nn.BatchNorm2d(out),
                         nn.LeakyReLU(leaky, inplace=True))  # fmt: skip


def _conv_bn_no_relu(inp: int, out: int) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 3, 1, 1, bias=False), nn.BatchNorm2d(out))


def _conv_bn_1x1(inp: int, out: int, leaky: float = 0.0) -> nn.Sequential:
    return nn.Sequential(nn.Conv2d(inp, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out),
                         nn.LeakyReLU(leaky, inplace=True))  # fmt: skip


def _conv_dw(inp: int, out: int, stride: int, leaky: float = 0.1) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(inp, inp, 3, stride, 1, groups=inp, bias=False), nn.BatchNorm2d(inp), nn.LeakyReLU(leaky, inplace=True),
        nn.Conv2d(inp, out, 1, 1, 0, bias=False), nn.BatchNorm2d(out), nn.LeakyReLU(leaky, inplace=True),
    )  # fmt: skip


class MobileNetV1x025(nn.Module):
    """The backbone's three stages (the classifier of the ImageNet original is not part of the weights)."""

    def __init__(self) -> None:
        super().__init__()
        self.stage1 = nn.Sequential(_conv_bn(3, 8, 2, leaky=0.1), _conv_dw(8, 16, 1), _conv_dw(16, 32, 2),
                                    _conv_dw(32, 32, 1), _conv_dw(32, 64, 2), _conv_dw(64, 64, 1))  # fmt: skip
        self.stage2 = nn.Sequential(_conv_dw(64, 128, 2), *(_conv_dw(128, 128, 1) for _ in range(5)))
        self.stage3 = nn.Sequential(_conv_dw(128, 256, 2), _conv_dw(256, 256, 1))

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        c1 = self.stage1(x)
        c2 = self.stage2(c1)
        return [c1, c2, self.stage3(c2)]


class FPN(nn.Module):
    def __init__(self, in_channels: tuple[int, int, int] = (64, 128, 256), out: int = 64) -> None:
        super().__init__()
        leaky = 0.1 if out <= 64 else 0.0
        self.output1, self.output2, self.output3 = (_conv_bn_1x1(c, out, leaky) for c in in_channels)
        self.merge1 = _conv_bn(out, out, leaky=leaky)
        self.merge2 = _conv_bn(out, out, leaky=leaky)

    def forward(self, features: list[torch.Tensor]) -> list[torch.Tensor]:
        out1, out2, out3 = self.output1(features[0]), self.output2(features[1]), self.output3(features[2])
        out2 = self.merge2(out2 + F.interpolate(out3, size=out2.shape[2:], mode="nearest"))
        out1 = self.merge1(out1 + F.interpolate(out2, size=out1.shape[2:], mode="nearest"))
        return [out1, out2, out3]


class SSH(nn.Module):
    def __init__(self, inp: int = 64, out: int = 64) -> None:
        super().__init__()
        leaky = 0.1 if out <= 64 else 0.0
        self.conv3X3 = _conv_bn_no_relu(inp, out // 2)
        self.conv5X5_1 = _conv_bn(inp, out // 4, leaky=leaky)
        self.conv5X5_2 = _conv_bn_no_relu(out // 4, out // 4)
        self.conv7X7_2 = _conv_bn(out // 4, out // 4, leaky=leaky)
        self.conv7x7_3 = _conv_bn_no_relu(out // 4, out // 4)  # sic: the weights' key is lower-case x

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        c5_1 = self.conv5X5_1(x)
        return F.relu(torch.cat([self.conv3X3(x), self.conv5X5_2(c5_1), self.conv7x7_3(self.conv7X7_2(c5_1))], 1))


class _Head(nn.Module):
    def __init__(self, per_anchor: int, channels: int = 64, anchors: int = 2) -> None:
        super().__init__()
        self.per_anchor = per_anchor
        self.conv1x1 = nn.Conv2d(channels, anchors * per_anchor, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        # (N, A * k, H, W) -> (N, H * W * A, k): cell-major (row, column), then anchor, as the priors
        return self.conv1x1(x).permute(0, 2, 3, 1).reshape(x.shape[0], -1, self.per_anchor)


class RetinaFaceNet(nn.Module):
    """(N, 3, H, W) BGR minus mean -> face probabilities (N, P), box offsets (N, P, 4), landmark offsets (N, P, 10)."""

    def __init__(self) -> None:
        super().__init__()
        self.body = MobileNetV1x025()
        self.fpn = FPN()
        self.ssh1, self.ssh2, self.ssh3 = SSH(), SSH(), SSH()
        self.ClassHead = nn.ModuleList(_Head(2) for _ in STRIDES)
        self.BboxHead = nn.ModuleList(_Head(4) for _ in STRIDES)
        self.LandmarkHead = nn.ModuleList(_Head(10) for _ in STRIDES)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        features = self.fpn(self.body(x))
        levels = [self.ssh1(features[0]), self.ssh2(features[1]), self.ssh3(features[2])]
        logits = torch.cat([head(f) for head, f in zip(self.ClassHead, levels, strict=True)], 1)
        boxes = torch.cat([head(f) for head, f in zip(self.BboxHead, levels, strict=True)], 1)
        landmarks = torch.cat([head(f) for head, f in zip(self.LandmarkHead, levels, strict=True)], 1)
        return logits.softmax(-1)[..., 1], boxes, landmarks


def prior_boxes(height: int, width: int) -> np.ndarray:
    """Anchors (P, 4) as (cx, cy, w, h) in pixels, in the heads' order: stride, row, column, anchor size.

    Level k has ceil(H / stride) x ceil(W / stride) cells (what the stride-2 convs give); the anchors
    of cell (i, j) are centred on ((j + 0.5) * stride, (i + 0.5) * stride).
    """
    priors = []
    for stride, sizes in zip(STRIDES, ANCHOR_SIZES, strict=True):
        rows, cols = math.ceil(height / stride), math.ceil(width / stride)
        cy, cx = np.meshgrid((np.arange(rows) + 0.5) * stride, (np.arange(cols) + 0.5) * stride, indexing="ij")
        for_cells = [np.stack([cx, cy, np.full_like(cx, s), np.full_like(cx, s)], -1) for s in sizes]
        priors.append(np.stack(for_cells, 2).reshape(-1, 4))
    return np.concatenate(priors).astype(np.float32)


def decode(priors: np.ndarray, box_offsets: np.ndarray, landmark_offsets: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Offsets -> boxes (P, 4) x1, y1, x2, y2 and landmarks (P, 5, 2), pixels (the original's rule)."""
    centre, size = priors[:, :2], priors[:, 2:]
    box_centre = centre + box_offsets[:, :2] * VARIANCES[0] * size
    box_size = size * np.exp(box_offsets[:, 2:] * VARIANCES[1])
    boxes = np.concatenate([box_centre - box_size / 2, box_centre + box_size / 2], 1)
    landmarks = centre[:, None, :] + landmark_offsets.reshape(-1, 5, 2) * VARIANCES[0] * size[:, None, :]
    return boxes, landmarks


def load_network(device: str | torch.device = "cpu") -> RetinaFaceNet:
    """The network with the packaged, SHA-256-checked weights, strictly loaded, in eval mode."""
    net = RetinaFaceNet()
    state = torch.load(checked_weight_path(WEIGHTS_FILE), map_location="cpu", weights_only=True)
    net.load_state_dict(state, strict=True)
    return net.to(device).eval()


class RetinaFaceDetector:
    """RetinaFace MobileNet-0.25 on uint8 RGB frames: every face with box, probability and five landmarks.

    ``correction``: "linear" (default), "constant" or "none" (RetinaFace's own points), see facebench.data.landmarks.
    """

    name = "retinaface"

    def __init__(self, min_face_px: int = 0, max_side_px: int = 640, device: str | torch.device = "cpu",
                 correction: str = "linear") -> None:  # fmt: skip
        self.min_face_px = min_face_px
        self.max_side_px = max_side_px
        self.correction = correction
        self.device = torch.device(device)
        self.net = load_network(self.device)
        self.mean = torch.tensor(BGR_MEAN, device=self.device).view(1, 3, 1, 1)
        self._priors: dict[tuple[int, int], np.ndarray] = {}

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in the frame, most probable first, in the frame's pixel coordinates."""
        return self.detect_batch([image])[0]

    def detect_batch(self, images: list[np.ndarray]) -> list[list[Face]]:
        """The faces of each frame; frames of one size share one forward pass."""
        for image in images:
            check_rgb(image)
        small = [downscale(image, self.max_side_px) for image in images]
        out: list[list[Face] | None] = [None] * len(images)
        by_shape: dict[tuple[int, int], list[int]] = {}
        for i, (frame, _) in enumerate(small):
            by_shape.setdefault(frame.shape[:2], []).append(i)
        for (height, width), indices in by_shape.items():
            batch = np.stack([small[i][0] for i in indices])
            for i, faces in zip(indices, self._detect_same_size(batch, height, width), strict=True):
                factor = small[i][1]
                out[i] = [self._finish(box, score, points, factor) for box, score, points in faces]
        return [faces or [] for faces in out]

    @torch.inference_mode()
    def _detect_same_size(self, batch: np.ndarray, height: int, width: int) -> list[list[tuple]]:
        x = torch.from_numpy(batch).to(self.device).permute(0, 3, 1, 2).flip(1).float() - self.mean  # RGB -> BGR
        probs, box_offsets, landmark_offsets = self.net(x)
        if (height, width) not in self._priors:
            self._priors[(height, width)] = prior_boxes(height, width)
        priors = self._priors[(height, width)]
        results = []
        for prob, boxes_off, points_off in zip(probs.cpu().numpy(), box_offsets.cpu().numpy(),
                                               landmark_offsets.cpu().numpy(), strict=True):  # fmt: skip
            keep = np.flatnonzero(prob >= SCORE_THRESHOLD)
            keep = keep[np.argsort(-prob[keep], kind="stable")][:PRE_NMS_TOP_K]
            boxes, points = decode(priors[keep], boxes_off[keep], points_off[keep])
            chosen = nms(boxes, prob[keep], NMS_IOU) if len(keep) else np.zeros(0, dtype=np.int64)
            sides = np.minimum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
            results.append([(boxes[k], float(prob[keep][k]), points[k]) for k in chosen
                            if sides[k] >= self.min_face_px])  # fmt: skip
        return results

    def _finish(self, box: np.ndarray, score: float, points: np.ndarray, factor: float) -> Face:
        # pixel i spans [i, i + 1) for the boxes and the anchors; landmarks go to pixel centres (i at i)
        landmarks = ((points / factor) - 0.5).astype(np.float32)
        if self.correction != "none":
            landmarks = correct_landmarks(self.name, landmarks, self.correction)
        return Face(box=(box / factor).astype(np.float32), score=score, landmarks=landmarks)
