"""MTCNN face detector (Zhang et al., 2016, "Joint Face Detection and Alignment using
Multi-task Cascaded Convolutional Networks") on the MIT weights of facenet-pytorch.

Three small networks in a cascade:
1. P-Net, fully convolutional, slides a 12x12 window (stride 2) over an image pyramid
   and proposes boxes with a face probability and box offsets;
2. R-Net rescores 24x24 crops of the surviving boxes and refines them;
3. O-Net rescores 48x48 crops, refines the boxes once more and gives five landmarks.
Between stages: non-maximum suppression, offset regression, boxes made square.

Large frames are searched at reduced size (``max_side_px``) and faces smaller than
``min_face_px`` (in the reduced frame) are not searched for: both bound the pyramid,
which is where the time goes (about 0.6 s per megapixel at facenet-pytorch's defaults).
"""

from __future__ import annotations

import math

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from facebench.data.detectors import Face, check_rgb, downscale
from facebench.data.mtcnn_weights import mtcnn_weight_paths

PYRAMID_FACTOR = 0.709  # scale step between pyramid levels (area halves every two levels)
PNET_WINDOW_PX = 12  # P-Net's receptive field
PNET_STRIDE_PX = 2
THRESHOLDS = (0.6, 0.7, 0.7)  # face probability each stage keeps (the paper's values)
NMS_IOU = (0.5, 0.7, 0.7, 0.7)  # P-Net per level, P-Net all levels, R-Net, O-Net ("min" overlap)


def _flatten_like_source(x: torch.Tensor) -> torch.Tensor:
    """Flatten (N, C, H, W) in (W, H, C) order: the dense weights were converted from a
    framework that flattens that way, so this order is part of the weight format."""
    return x.permute(0, 3, 2, 1).flatten(1)


class PNet(nn.Module):
    """12x12 proposal net, fully convolutional: -> face probability map, box offsets map."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 10, 3), nn.PReLU(10)
        self.conv2, self.prelu2 = nn.Conv2d(10, 16, 3), nn.PReLU(16)
        self.conv3, self.prelu3 = nn.Conv2d(16, 32, 3), nn.PReLU(32)
        self.conv4_1 = nn.Conv2d(32, 2, 1)  # face / not-face logits
        self.conv4_2 = nn.Conv2d(32, 4, 1)  # box offsets

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 2, 2, ceil_mode=True)
        x = self.prelu3(self.conv3(self.prelu2(self.conv2(x))))
        return self.conv4_1(x).softmax(1)[:, 1], self.conv4_2(x)


class RNet(nn.Module):
    """24x24 refinement net: -> face probability, box offsets."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 28, 3), nn.PReLU(28)
        self.conv2, self.prelu2 = nn.Conv2d(28, 48, 3), nn.PReLU(48)
        self.conv3, self.prelu3 = nn.Conv2d(48, 64, 2), nn.PReLU(64)
        self.dense4, self.prelu4 = nn.Linear(576, 128), nn.PReLU(128)
        self.dense5_1 = nn.Linear(128, 2)
        self.dense5_2 = nn.Linear(128, 4)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = self.prelu4(self.dense4(_flatten_like_source(self.prelu3(self.conv3(x)))))
        return self.dense5_1(x).softmax(1)[:, 1], self.dense5_2(x)


class ONet(nn.Module):
    """48x48 output net: -> face probability, box offsets, landmarks (5 x then 5 y, box-relative)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv1, self.prelu1 = nn.Conv2d(3, 32, 3), nn.PReLU(32)
        self.conv2, self.prelu2 = nn.Conv2d(32, 64, 3), nn.PReLU(64)
        self.conv3, self.prelu3 = nn.Conv2d(64, 64, 3), nn.PReLU(64)
        self.conv4, self.prelu4 = nn.Conv2d(64, 128, 2), nn.PReLU(128)
        self.dense5, self.prelu5 = nn.Linear(1152, 256), nn.PReLU(256)
        self.dense6_1 = nn.Linear(256, 2)
        self.dense6_2 = nn.Linear(256, 4)
        self.dense6_3 = nn.Linear(256, 10)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        x = F.max_pool2d(self.prelu1(self.conv1(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu2(self.conv2(x)), 3, 2, ceil_mode=True)
        x = F.max_pool2d(self.prelu3(self.conv3(x)), 2, 2, ceil_mode=True)
        x = self.prelu5(self.dense5(_flatten_like_source(self.prelu4(self.conv4(x)))))
        return self.dense6_1(x).softmax(1)[:, 1], self.dense6_2(x), self.dense6_3(x)


def nms(boxes: np.ndarray, scores: np.ndarray, threshold: float, mode: str = "union") -> np.ndarray:
    """Greedy non-maximum suppression; indices kept, best score first.

    Overlap is intersection over union, or over the smaller box for mode "min" (which
    also removes a small box lying inside a bigger one).
    """
    x1, y1, x2, y2 = boxes[:, 0], boxes[:, 1], boxes[:, 2], boxes[:, 3]
    areas = (x2 - x1) * (y2 - y1)
    order = np.argsort(-scores, kind="stable")
    keep = []
    while order.size:
        best, rest = order[0], order[1:]
        keep.append(best)
        width = np.clip(np.minimum(x2[best], x2[rest]) - np.maximum(x1[best], x1[rest]), 0, None)
        height = np.clip(np.minimum(y2[best], y2[rest]) - np.maximum(y1[best], y1[rest]), 0, None)
        inter = width * height
        base = np.minimum(areas[best], areas[rest]) if mode == "min" else areas[best] + areas[rest] - inter
        order = rest[inter <= threshold * base]
    return np.asarray(keep, dtype=np.int64)


def _regress(boxes: np.ndarray, offsets: np.ndarray) -> np.ndarray:
    """Move each box edge by its offset times the box width/height."""
    size = np.stack([boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1]] * 2, axis=1)
    return boxes + offsets * size


def _square(boxes: np.ndarray) -> np.ndarray:
    """Square boxes with the same centres, side = longer side, on whole pixels."""
    side = np.maximum(boxes[:, 2] - boxes[:, 0], boxes[:, 3] - boxes[:, 1])
    x1 = np.round((boxes[:, 0] + boxes[:, 2] - side) / 2)
    y1 = np.round((boxes[:, 1] + boxes[:, 3] - side) / 2)
    side = np.maximum(np.round(side), 1)
    return np.stack([x1, y1, x1 + side, y1 + side], axis=1)


def _to_tensor(images: np.ndarray) -> torch.Tensor:
    """uint8 NHWC -> float NCHW scaled as the nets were trained: (x - 127.5) / 128."""
    return (torch.from_numpy(np.ascontiguousarray(images)).permute(0, 3, 1, 2).float() - 127.5) / 128.0


def _patches(image: np.ndarray, boxes: np.ndarray, size: int) -> torch.Tensor:
    """Square whole-pixel boxes cut from the image (zeros outside it), resized to size x size."""
    height, width = image.shape[:2]
    out = np.empty((len(boxes), size, size, 3), dtype=np.uint8)
    for i, (x1, y1, x2, y2) in enumerate(boxes.astype(np.int64)):
        patch = np.zeros((y2 - y1, x2 - x1, 3), dtype=np.uint8)
        sx1, sy1, sx2, sy2 = max(x1, 0), max(y1, 0), min(x2, width), min(y2, height)
        if sx2 > sx1 and sy2 > sy1:
            patch[sy1 - y1 : sy2 - y1, sx1 - x1 : sx2 - x1] = image[sy1:sy2, sx1:sx2]
        out[i] = cv2.resize(patch, (size, size), interpolation=cv2.INTER_AREA)
    return _to_tensor(out)


class MtcnnDetector:
    """MTCNN on any uint8 RGB frame: every face with box, probability and five landmarks."""

    name = "mtcnn"

    def __init__(self, min_face_px: int = 40, max_side_px: int = 640, device: str | torch.device = "cpu") -> None:
        self.min_face_px = min_face_px
        self.max_side_px = max_side_px
        self.device = torch.device(device)
        paths = mtcnn_weight_paths()
        self.pnet, self.rnet, self.onet = PNet(), RNet(), ONet()
        for net, file in ((self.pnet, "pnet.pt"), (self.rnet, "rnet.pt"), (self.onet, "onet.pt")):
            net.load_state_dict(torch.load(paths[file], map_location="cpu", weights_only=True))
            net.to(self.device).eval()

    def detect(self, image: np.ndarray) -> list[Face]:
        """All faces in the frame, most probable first, in the frame's pixel coordinates."""
        check_rgb(image)
        small, factor = downscale(image, self.max_side_px)
        with torch.inference_mode():
            boxes, scores, landmarks = self._cascade(small)
        # Boxes stay in edge coordinates (pixel i spans [i, i + 1)); landmarks move to the
        # pixel-centre convention of warpAffine and the template (pixel i's centre is i); with
        # this shift, faces found in a photo and in its mirror image agree within 0.15 px.
        return [
            Face(box=(box / factor).astype(np.float32), score=float(score),
                 landmarks=(points / factor - 0.5).astype(np.float32))
            for box, score, points in zip(boxes, scores, landmarks, strict=True)
        ]

    def _cascade(self, image: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        none = (np.zeros((0, 4)), np.zeros(0), np.zeros((0, 5, 2)))
        boxes = self._propose(image)
        if not len(boxes):
            return none
        probs, offsets = self.rnet(_patches(image, boxes, 24).to(self.device))
        probs, offsets = probs.cpu().numpy(), offsets.cpu().numpy()
        keep = np.flatnonzero(probs > THRESHOLDS[1])
        keep = keep[nms(boxes[keep], probs[keep], NMS_IOU[2])]
        if not len(keep):
            return none
        boxes = _square(_regress(boxes[keep], offsets[keep]))

        probs, offsets, points = (t.cpu().numpy() for t in self.onet(_patches(image, boxes, 48).to(self.device)))
        keep = np.flatnonzero(probs > THRESHOLDS[2])
        boxes, probs, offsets, points = boxes[keep], probs[keep], offsets[keep], points[keep]
        size = (boxes[:, 2:] - boxes[:, :2])[:, None, :]  # (N, 1, 2) width, height
        landmarks = boxes[:, None, :2] + np.stack([points[:, :5], points[:, 5:]], axis=2) * size
        boxes = _regress(boxes, offsets)
        keep = nms(boxes, probs, NMS_IOU[3], mode="min")
        return boxes[keep], probs[keep], landmarks[keep]

    def _propose(self, image: np.ndarray) -> np.ndarray:
        """P-Net over the pyramid -> candidate square boxes for R-Net."""
        height, width = image.shape[:2]
        scale = PNET_WINDOW_PX / self.min_face_px
        found = []
        while min(height, width) * scale >= PNET_WINDOW_PX:
            size_x, size_y = math.ceil(width * scale), math.ceil(height * scale)
            level = cv2.resize(image, (size_x, size_y), interpolation=cv2.INTER_AREA)
            probs, offsets = self.pnet(_to_tensor(level[None]).to(self.device))
            probs, offsets = probs[0].cpu().numpy(), offsets[0].cpu().numpy()
            rows, cols = np.nonzero(probs >= THRESHOLDS[0])
            if len(rows):
                # the window at map cell (r, c) covers [2c, 2c + 12) x [2r, 2r + 12) of the level
                start = np.stack([cols, rows], axis=1) * PNET_STRIDE_PX
                level_boxes = np.concatenate([start, start + PNET_WINDOW_PX], axis=1).astype(np.float64)
                level_boxes /= np.array([size_x / width, size_y / height] * 2)
                level_probs = probs[rows, cols]
                keep = nms(level_boxes, level_probs, NMS_IOU[0])
                found.append((level_boxes[keep], level_probs[keep], offsets[:, rows[keep], cols[keep]].T))
            scale *= PYRAMID_FACTOR
        if not found:
            return np.zeros((0, 4))
        boxes, probs, offsets = (np.concatenate(parts) for parts in zip(*found, strict=True))
        keep = nms(boxes, probs, NMS_IOU[1])
        return _square(_regress(boxes[keep], offsets[keep]))
