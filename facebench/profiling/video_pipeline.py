"""detect -> align -> embed for a group of decoded frames, each stage timed, faces batched.

A group is one frame (``--batch-frames 1``) or several consecutive frames: every frame is
detected on its own (or, for a detector with ``detect_batch`` such as RetinaFace, all the
group's frames in one forward pass), then all the group's faces are warped into one reused crop buffer and
sent through the model as one batch, normalised in reused input buffers. Stage times are
per frame; a group's align and embed times are shared among its frames in proportion to
their faces, so the per-frame times still add up to what the group cost.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np
import torch
from torch import nn

from facebench.data.align import similarity_to_template
from facebench.data.detectors import Detector, Face
from facebench.input_spec import INPUT_SIZE, model_input_spec
from facebench.profiling.frames import Frame

STAGES = ("decode", "detect", "align", "embed")


class FaceAligner:
    """Warp the faces of one or more frames onto the ArcFace template, into one reused (n, 112, 112, 3) buffer.

    Same transform and interpolation as ``facebench.data.align.warp_to_template`` (the crops
    are identical); faces whose landmarks are degenerate are left out.
    """

    def __init__(self, capacity: int = 8) -> None:
        self._buffer = np.empty((capacity, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)

    def __call__(self, images: Sequence[np.ndarray], faces: Sequence[Sequence[Face]]) -> tuple[np.ndarray, list[list[Face]]]:
        """Crops of every kept face, frame after frame (a view of the buffer, valid until the
        next call), and the faces kept in each frame."""
        fitted = [[(face, similarity_to_template(face.landmarks)) for face in frame_faces] for frame_faces in faces]
        fitted = [[(face, matrix) for face, matrix in frame if matrix is not None] for frame in fitted]
        count = sum(len(frame) for frame in fitted)
        if count > len(self._buffer):
            self._buffer = np.empty((count, *self._buffer.shape[1:]), dtype=np.uint8)
        size, i = (INPUT_SIZE, INPUT_SIZE), 0
        for image, frame in zip(images, fitted, strict=True):
            for _, matrix in frame:
                cv2.warpAffine(image, matrix, size, dst=self._buffer[i], flags=cv2.INTER_LINEAR,
                               borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
                i += 1
        return self._buffer[:count], [[face for face, _ in frame] for frame in fitted]


class BatchEmbedder:
    """One forward pass for a batch of uint8 RGB crops, through reused input buffers.

    The crops are copied into a float buffer on the model's device (via a pinned uint8
    staging buffer on CUDA, a quarter of the float bytes) and normalised there in place by
    the model's input spec (``facebench.input_spec``: per-channel mean and std, channel
    order; resized bilinearly when its size is not 112).
    Embeddings come back as float32 numpy; on CUDA the device is synchronised first.
    """

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False) -> None:  # fmt: skip
        self.model, self.device, self.dtype = model, device, dtype
        spec = model_input_spec(model)
        self.size, self.bgr = spec.size, spec.bgr
        self.mean = torch.tensor(spec.mean, device=device).view(1, 3, 1, 1)
        self.inv_std = 1.0 / torch.tensor(spec.std, device=device).view(1, 3, 1, 1)
        self.memory_format = torch.channels_last if channels_last else torch.contiguous_format
        self._capacity = 0

    def _grow(self, n: int) -> None:
        shape = (n, 3, INPUT_SIZE, INPUT_SIZE)
        self._input = torch.empty(shape, device=self.device).contiguous(memory_format=self.memory_format)
        self._cast = self._input if self.dtype == torch.float32 else torch.empty_like(self._input, dtype=self.dtype)
        if self.device.type == "cuda":
            self._staging = torch.empty((n, INPUT_SIZE, INPUT_SIZE, 3), dtype=torch.uint8, pin_memory=True)
            self._device_u8 = torch.empty_like(self._staging, device=self.device)
        self._capacity = n

    @torch.inference_mode()
    def __call__(self, crops: np.ndarray) -> np.ndarray:
        """(n, 112, 112, 3) uint8 -> (n, embedding) float32; n may be 0."""
        n = len(crops)
        if n == 0:
            return np.zeros((0, 0), dtype=np.float32)
        if n > self._capacity:
            self._grow(n)
        source = torch.from_numpy(np.ascontiguousarray(crops))
        if self.device.type == "cuda":
            self._staging[:n].copy_(source)
            source = self._device_u8[:n].copy_(self._staging[:n], non_blocking=True)
        x = self._input[:n]
        x.copy_(source.permute(0, 3, 1, 2)).sub_(self.mean).mul_(self.inv_std)
        if self.bgr:
            x = x.flip(1)
        if self.size != INPUT_SIZE:
            x = torch.nn.functional.interpolate(x, size=(self.size, self.size), mode="bilinear", align_corners=False)
        if self._cast is not self._input:
            x = self._cast[:n].copy_(x)
        embeddings = self.model(x)
        if self.device.type == "cuda":
            torch.cuda.synchronize(self.device)
        return embeddings.float().cpu().numpy()


@dataclass
class FrameResult:
    """One processed frame: stage times (ms, in STAGES order), the faces used and their embeddings."""

    index: int
    stage_ms: tuple[float, float, float, float]
    faces: list[Face]
    embeddings: np.ndarray


@dataclass
class VideoPipeline:
    """detect -> align -> embed for a group of decoded frames, each stage timed on its own.

    Holds its own crop and input buffers, so concurrent groups need one pipeline each (the
    detector and the model may be shared).
    """

    detector: Detector
    embedder: BatchEmbedder
    aligner: FaceAligner = field(default_factory=FaceAligner)

    def process(self, frames: Sequence[Frame]) -> list[FrameResult]:
        """One result per frame, in order; the group's faces go through the model as one batch."""
        sync = _sync_for(self.embedder.device)
        detect_ms, faces = [], []
        detect_batch = getattr(self.detector, "detect_batch", None)
        if detect_batch is not None and len(frames) > 1:
            # one forward pass for the group's frames (RetinaFace); its time is shared out equally
            start = time.perf_counter()
            faces = list(detect_batch([frame.rgb for frame in frames]))
            sync()
            detect_ms = [(time.perf_counter() - start) * 1e3 / len(frames)] * len(frames)
        else:
            for frame in frames:
                start = time.perf_counter()
                faces.append(self.detector.detect(frame.rgb))
                sync()
                detect_ms.append((time.perf_counter() - start) * 1e3)
        start = time.perf_counter()
        crops, kept = self.aligner([frame.rgb for frame in frames], faces)
        aligned = time.perf_counter()
        embeddings = self.embedder(crops)
        embedded = time.perf_counter()
        counts = np.array([len(frame_faces) for frame_faces in kept])
        shares = counts / counts.sum() if counts.sum() else np.full(len(frames), 1 / len(frames))
        ends = np.cumsum(counts)
        return [
            FrameResult(
                frame.index,
                (frame.decode_ms, detect, (aligned - start) * 1e3 * share, (embedded - aligned) * 1e3 * share),
                frame_faces,
                embeddings[end - count : end],
            )
            for frame, detect, frame_faces, share, count, end in zip(frames, detect_ms, kept, shares, counts, ends, strict=True)
        ]


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None
