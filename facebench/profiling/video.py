"""Per-stage cost of face verification on video: decode, detect, align, embed, every frame.

Each model gets its own full pass over the video, so a result row is what a deployment
with that model pays per frame. The timing rules are ``facebench profile``'s: untimed
warm-up (``warmup`` passes of the whole pipeline over the first frame, then one forward at
every batch size up to WARMUP_BATCH_MAX, since a shape's first forward pays one-off setup
in cuDNN and oneDNN), everything under
``torch.inference_mode``, CUDA synchronised at the end of every timed stage, the CPU
thread count pinned and recorded. Each frame's faces go through the model as one batch,
normalised into reused input buffers.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from facebench.data.align import similarity_to_template
from facebench.data.detectors import Detector, Face, get_detector
from facebench.device import device_name
from facebench.models import create_model, model_spec
from facebench.models.input_spec import INPUT_SIZE, PIXEL_MEAN, PIXEL_STD
from facebench.profiling.frames import Frame, read_frames
from facebench.profiling.memory import (
    CpuPeakRss,
    cuda_peak_reset,
    cuda_peaks_mb,
    nvml_device_used_mb,
    nvml_process_mb,
)
from facebench.profiling.runtime import check_precision, latency_summary, pinned_threads
from facebench.profiling.tracking import IouTracker, identity_consistency

STAGES = ("decode", "detect", "align", "embed")
WARMUP_BATCH_MAX = 8  # warm-up also runs one forward at each batch size 1..8 (first-seen shapes cost extra)


@dataclass(frozen=True)
class VideoConfig:
    """How the video pipeline is run and timed; every field is recorded beside the result."""

    device: torch.device
    precision: str = "fp32"
    detector: str = "mtcnn"
    every: int = 1  # process frames 0, every, 2 * every, ...
    max_frames: int | None = None  # processed frames at most
    warmup: int = 20  # untimed pipeline passes over the first frame
    threads: int | None = None
    channels_last: bool = False


def video_detector(name: str, device: torch.device) -> Detector:
    """The detector ``name``; MTCNN (torch nets) runs on the profiled device, Haar on the CPU."""
    if name == "mtcnn" and device.type == "cuda":
        from facebench.data.mtcnn import MtcnnDetector

        return MtcnnDetector(device=device)
    return get_detector(name)


class FaceAligner:
    """Warp every face of a frame onto the ArcFace template, into one reused (n, 112, 112, 3) buffer.

    Same transform and interpolation as ``facebench.data.align.warp_to_template`` (the crops
    are identical); faces whose landmarks are degenerate are left out.
    """

    def __init__(self, capacity: int = 8) -> None:
        self._buffer = np.empty((capacity, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8)

    def __call__(self, rgb: np.ndarray, faces: Sequence[Face]) -> tuple[np.ndarray, list[Face]]:
        """Crops (a view of the buffer, valid until the next call) and the faces they belong to."""
        fitted = [(face, similarity_to_template(face.landmarks)) for face in faces]
        fitted = [(face, matrix) for face, matrix in fitted if matrix is not None]
        if len(fitted) > len(self._buffer):
            self._buffer = np.empty((len(fitted), *self._buffer.shape[1:]), dtype=np.uint8)
        size = (INPUT_SIZE, INPUT_SIZE)
        for i, (_, matrix) in enumerate(fitted):
            cv2.warpAffine(rgb, matrix, size, dst=self._buffer[i], flags=cv2.INTER_LINEAR,
                           borderMode=cv2.BORDER_CONSTANT, borderValue=0)  # fmt: skip
        return self._buffer[: len(fitted)], [face for face, _ in fitted]


class BatchEmbedder:
    """One forward pass for a batch of uint8 RGB crops, through reused input buffers.

    The crops are copied into a float buffer on the model's device (via a pinned uint8
    staging buffer on CUDA, a quarter of the float bytes) and normalised there in place with
    ``input_spec``'s constants, in the same order of operations as ``to_model_input``.
    Embeddings come back as float32 numpy; on CUDA the device is synchronised first.
    """

    def __init__(self, model: nn.Module, device: torch.device, dtype: torch.dtype = torch.float32,
                 channels_last: bool = False) -> None:  # fmt: skip
        self.model, self.device, self.dtype = model, device, dtype
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
        x.copy_(source.permute(0, 3, 1, 2)).div_(255.0).sub_(PIXEL_MEAN).div_(PIXEL_STD)
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
    """detect -> align -> embed for one decoded frame, each stage timed on its own."""

    detector: Detector
    embedder: BatchEmbedder
    aligner: FaceAligner = field(default_factory=FaceAligner)

    def process(self, frame: Frame) -> FrameResult:
        sync = _sync_for(self.embedder.device)
        start = time.perf_counter()
        faces = self.detector.detect(frame.rgb)
        sync()
        detected = time.perf_counter()
        crops, faces = self.aligner(frame.rgb, faces)
        aligned = time.perf_counter()
        embeddings = self.embedder(crops)
        embedded = time.perf_counter()
        stage_ms = (frame.decode_ms, (detected - start) * 1e3, (aligned - detected) * 1e3, (embedded - aligned) * 1e3)
        return FrameResult(frame.index, stage_ms, faces, embeddings)


def _sync_for(device: torch.device) -> Callable[[], None]:
    if device.type == "cuda":
        return lambda: torch.cuda.synchronize(device)
    return lambda: None


@dataclass
class VideoRun:
    """Everything one model's pass over the video measured."""

    stage_ms: np.ndarray  # (frames, 4), STAGES order
    faces_per_frame: np.ndarray  # (frames,)
    track_ids: list[int]  # one per face, faces in time order
    embeddings: np.ndarray  # (faces, embedding)
    threads: int
    memory: dict[str, Any]


FrameHook = Callable[[Frame, FrameResult, list[int]], None]


def run_video(
    build_model: Callable[[], nn.Module],
    video: str | Path,
    detector: Detector,
    config: VideoConfig,
    on_frame: FrameHook | None = None,
) -> VideoRun:
    """One timed pass of the pipeline over ``video`` with the model ``build_model()`` returns.

    The model is built inside the memory window (CPU: peak RSS growth; CUDA: allocator
    peaks and the NVML process total), so memory counts weights, activations and frame
    buffers; the detector is built before and is not counted. ``on_frame(frame, result,
    track_ids)`` runs after each frame, outside the timed stages (annotation, progress).
    """
    dtype = check_precision(config.device, config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    baseline_mb = nvml_device_used_mb(config.device) if config.device.type == "cuda" else float("nan")
    results: list[FrameResult] = []
    track_ids: list[int] = []
    with pinned_threads(config.threads) as threads, _memory_window(config.device, baseline_mb) as memory:
        model = build_model().eval().to(device=config.device, dtype=dtype, memory_format=memory_format)
        pipeline = VideoPipeline(detector, BatchEmbedder(model, config.device, dtype, config.channels_last))
        with torch.inference_mode():
            with closing(read_frames(video, 1, 1)) as first:
                frame = next(first)
                for _ in range(config.warmup):
                    pipeline.process(frame)
            for n in range(1, WARMUP_BATCH_MAX + 1) if config.warmup else ():
                pipeline.embedder(np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
            tracker = IouTracker()
            for frame in read_frames(video, config.every, config.max_frames):
                result = pipeline.process(frame)
                ids = tracker.update(np.array([face.box for face in result.faces]))
                results.append(result)
                track_ids.extend(ids)
                if on_frame:
                    on_frame(frame, result, ids)
    with_faces = [r.embeddings for r in results if len(r.faces)]
    return VideoRun(
        stage_ms=np.array([r.stage_ms for r in results], dtype=np.float64).reshape(-1, len(STAGES)),
        faces_per_frame=np.array([len(r.faces) for r in results], dtype=np.int64),
        track_ids=track_ids,
        embeddings=np.concatenate(with_faces) if with_faces else np.zeros((0, 0), dtype=np.float32),
        threads=threads,
        memory=memory,
    )


@contextmanager
def _memory_window(device: torch.device, gpu_used_baseline_mb: float) -> Iterator[dict[str, Any]]:
    """Yield a dict that holds the labelled memory columns once the block ends."""
    memory: dict[str, Any] = {}
    if device.type == "cuda":
        cuda_peak_reset(device)
        yield memory
        memory |= cuda_peaks_mb(device)
        process_mb, source = nvml_process_mb(device, gpu_used_baseline_mb)
        memory |= {"mem_process_mb": process_mb, "mem_process_source": source}
    else:
        with CpuPeakRss() as rss:
            yield memory
        memory["mem_rss_peak_growth_mb"] = rss.growth_mb


def summarise_run(run: VideoRun) -> dict[str, float | int]:
    """Per-stage ms (mean, std, p50, p95), end-to-end fps, faces and identity consistency of one pass.

    ``total`` is the per-frame sum of the four stages; fps = 1000 / mean total ms.
    ``embed_ms_per_face`` = all embed time / all faces. ``embeddings_nonfinite_or_zero``
    counts embeddings that are unusable (overflow to inf/NaN or underflow to zero, e.g. an
    untrained deep model in fp16); the consistency figures are NaN when there are any.
    """
    row: dict[str, float | int] = {"frames": len(run.stage_ms)}
    totals = run.stage_ms.sum(axis=1)
    for stage, times in [*zip(STAGES, run.stage_ms.T, strict=True), ("total", totals)]:
        summary = latency_summary(times, 1)
        for stat in ("mean", "std", "p50", "p95"):
            row[f"{stage}_ms_{stat}"] = summary[f"latency_ms_{stat}"]
    faces = int(run.faces_per_frame.sum())
    row |= {
        "fps": 1e3 / float(totals.mean()),
        "faces": faces,
        "faces_per_frame": float(run.faces_per_frame.mean()),
        "frames_without_faces": int((run.faces_per_frame == 0).sum()),
        "embed_ms_per_face": float(run.stage_ms[:, 3].sum() / faces) if faces else float("nan"),
        "embeddings_nonfinite_or_zero": _unusable(run.embeddings),
    }
    return row | identity_consistency(run.track_ids, run.embeddings)


def _unusable(embeddings: np.ndarray) -> int:
    """Embeddings with a non-finite value or a zero norm."""
    if not embeddings.size:
        return 0
    finite = np.isfinite(embeddings).all(axis=1)
    return int((~finite | ~np.any(embeddings != 0, axis=1)).sum())


def profile_video(
    names: Sequence[str],
    video: str | Path,
    config: VideoConfig,
    on_model_start: Callable[[str], None] | None = None,
    on_frame: FrameHook | None = None,
    first_pass_hook: FrameHook | None = None,
) -> list[dict[str, Any]]:
    """One result row per model: settings, per-stage ms, fps, faces, identity consistency, memory.

    All names are validated and the detector is built before any pass starts.
    ``first_pass_hook`` runs on every frame of the first model's pass only (the detections
    are the same in every pass), e.g. to write the annotated video.
    """
    for name in names:
        model_spec(name)
    detector = video_detector(config.detector, config.device)
    rows = []
    for k, name in enumerate(names):
        if on_model_start:
            on_model_start(name)
        hooks = [h for h in (on_frame, first_pass_hook if k == 0 else None) if h is not None]
        run = run_video(lambda name=name: create_model(name), video, detector, config, _chain(hooks))
        rows.append(
            {
                "model": name,
                "device": device_name(config.device),
                "dtype": config.precision,
                "threads": run.threads,
                "channels_last": config.channels_last,
                "detector": config.detector,
                "every": config.every,
                **summarise_run(run),
                **run.memory,
            }
        )
    return rows


def _chain(hooks: Sequence[FrameHook]) -> FrameHook | None:
    if not hooks:
        return None

    def call_all(frame: Frame, result: FrameResult, ids: list[int]) -> None:
        for hook in hooks:
            hook(frame, result, ids)

    return call_all
