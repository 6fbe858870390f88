"""Per-stage cost of face verification on video: decode, detect, align, embed, every frame.

Each model gets its own full pass over the video, so a result row is what a deployment
with that model pays per frame. The timing rules are ``facebench profile``'s: untimed
warm-up (``warmup`` passes of the whole pipeline over the first frame, one over a group of
``batch_frames`` copies of it, then one forward at every batch size up to
WARMUP_BATCH_MAX, since a shape's first forward pays one-off setup in cuDNN and oneDNN),
everything under ``torch.inference_mode``, CUDA synchronised at the end of every timed
stage, the CPU thread count pinned and recorded. The faces of ``batch_frames``
consecutive frames go through the model as one batch (video_pipeline), on ``workers``
threads (video_stream).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facebench.data.detectors import Detector, build_detector
from facebench.device import check_precision, device_name, usable_cores
from facebench.errors import FacebenchError
from facebench.input_spec import INPUT_SIZE
from facebench.modelspec import ModelOptions, ModelRecipe, model_recipe
from facebench.profiling.frames import Frame, read_frames
from facebench.profiling.memory import (
    CpuPeakRss,
    cuda_peak_reset,
    cuda_peaks_mb,
    nvml_device_used_mb,
    nvml_process_mb,
)
from facebench.profiling.runtime import latency_summary, pinned_threads
from facebench.profiling.tracking import IouTracker, identity_consistency
from facebench.profiling.video_pipeline import STAGES, BatchEmbedder, FrameResult, VideoPipeline
from facebench.profiling.video_stream import stream_results

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
    threads: int | None = None  # torch and OpenCV threads of each worker (None: see worker_threads)
    channels_last: bool = False
    batch_frames: int = 1  # consecutive frames whose faces share one forward
    workers: int = 1  # groups of frames processed at once, one thread each

    def __post_init__(self) -> None:
        for option, value in (("--batch-frames", self.batch_frames), ("--workers", self.workers)):
            if value < 1:
                raise FacebenchError(f"{option} must be >= 1, got {value}")

    def worker_threads(self) -> int | None:
        """Threads per worker: as given; else the libraries' defaults for one worker and the
        usable cores shared out (at least one each) for several."""
        if self.threads is not None or self.workers == 1:
            return self.threads
        return max(1, usable_cores() // self.workers)


def video_detector(name: str, device: torch.device) -> Detector:
    """A new detector ``name`` (one per worker); MTCNN and RetinaFace (torch nets) run on the profiled
    device, YuNet and Haar (OpenCV) on the CPU."""
    if name == "mtcnn" and device.type == "cuda":
        from facebench.data.mtcnn import MtcnnDetector

        return MtcnnDetector(device=device)
    if name == "retinaface" and device.type == "cuda":
        from facebench.data.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(device=device)
    return build_detector(name)


@dataclass
class VideoRun:
    """Everything one model's pass over the video measured."""

    stage_ms: np.ndarray  # (frames, 4), STAGES order
    faces_per_frame: np.ndarray  # (frames,)
    track_ids: list[int]  # one per face, faces in time order
    embeddings: np.ndarray  # (faces, embedding)
    threads: int  # torch intra-op threads of each worker
    memory: dict[str, Any]
    workers: int = 1
    wall_s: float = float("nan")  # the timed pass, time in on_frame hooks left out


FrameHook = Callable[[Frame, FrameResult, list[int]], None]


def run_video(
    build_model: Callable[[], nn.Module],
    video: str | Path,
    detectors: Sequence[Detector],
    config: VideoConfig,
    on_frame: FrameHook | None = None,
) -> VideoRun:
    """One timed pass of the pipeline over ``video`` with the model ``build_model()`` returns.

    ``detectors`` holds one detector per worker. The model is built inside the memory
    window (CPU: peak RSS growth; CUDA: allocator peaks and the NVML process total), so
    memory counts weights, activations and frame buffers; the detectors are built before
    and are not counted. ``on_frame(frame, result, track_ids)`` runs after each frame,
    outside the timed stages (annotation, progress).
    """
    if len(detectors) != config.workers:
        raise ValueError(f"run_video needs one detector per worker: {len(detectors)} for {config.workers}")
    dtype = check_precision(config.device, config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    baseline_mb = nvml_device_used_mb(config.device) if config.device.type == "cuda" else float("nan")
    results: list[FrameResult] = []
    track_ids: list[int] = []
    hooks_s = 0.0
    with pinned_threads(config.worker_threads()) as threads, _memory_window(config.device, baseline_mb) as memory:
        model = build_model().eval().to(device=config.device, dtype=dtype, memory_format=memory_format)
        pipelines = [VideoPipeline(detector, BatchEmbedder(model, config.device, dtype, config.channels_last))
                     for detector in detectors]  # fmt: skip
        _warm_up(pipelines, video, config)
        tracker = IouTracker()
        start = time.perf_counter()
        for frame, result in stream_results(pipelines, video, config.every, config.max_frames, config.batch_frames):
            ids = tracker.update(np.array([face.box for face in result.faces]))
            results.append(result)
            track_ids.extend(ids)
            if on_frame:
                hook_start = time.perf_counter()
                on_frame(frame, result, ids)
                hooks_s += time.perf_counter() - hook_start
        wall_s = time.perf_counter() - start - hooks_s
    with_faces = [r.embeddings for r in results if len(r.faces)]
    return VideoRun(
        stage_ms=np.array([r.stage_ms for r in results], dtype=np.float64).reshape(-1, len(STAGES)),
        faces_per_frame=np.array([len(r.faces) for r in results], dtype=np.int64),
        track_ids=track_ids,
        embeddings=np.concatenate(with_faces) if with_faces else np.zeros((0, 0), dtype=np.float32),
        threads=threads,
        memory=memory,
        workers=config.workers,
        wall_s=wall_s,
    )


@torch.inference_mode()
def _warm_up(pipelines: Sequence[VideoPipeline], video: str | Path, config: VideoConfig) -> None:
    """The first pipeline runs the untimed passes; every pipeline's buffers see batch sizes 1..WARMUP_BATCH_MAX."""
    if not config.warmup:
        return
    with closing(read_frames(video, 1, 1)) as first:
        frame = next(first)
        for _ in range(config.warmup):
            pipelines[0].process([frame])
        if config.batch_frames > 1:
            pipelines[0].process([frame] * config.batch_frames)
    for pipeline in pipelines:
        for n in range(1, WARMUP_BATCH_MAX + 1):
            pipeline.embedder(np.zeros((n, INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))


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

    ``total`` is the per-frame sum of the four stages. fps = 1000 / mean total ms with one
    worker; with several, frames overlap and fps = frames / wall seconds of the pass.
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
        "fps": 1e3 / float(totals.mean()) if run.workers == 1 else len(totals) / run.wall_s,
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


def video_models(specs: Sequence[str], options: ModelOptions = ModelOptions()) -> list[ModelRecipe]:
    """The models ``--models`` names (zoo names, run folders, checkpoint and deployed files), checked and
    read before any pass; external models are refused (they align and embed their own chips)."""
    recipes = []
    for spec in specs:
        recipe = model_recipe(spec, "--models", options)
        if recipe.external:
            raise FacebenchError(f"--models {spec}: external models crop and align faces their own way, so "
                                 "profile --video cannot time them; give zoo names, run folders or checkpoints")  # fmt: skip
        recipes.append(recipe)
    return recipes


def profile_video(
    models: Sequence[ModelRecipe],
    video: str | Path,
    config: VideoConfig,
    on_model_start: Callable[[str], None] | None = None,
    on_frame: FrameHook | None = None,
    first_pass_hook: FrameHook | None = None,
) -> list[dict[str, Any]]:
    """One result row per model: settings, per-stage ms, fps, faces, identity consistency, memory.

    The detectors (one per worker) are built before any pass starts; each model is built
    inside its pass's memory window. ``first_pass_hook`` runs on every frame of the first
    model's pass only (the detections are the same in every pass), e.g. to write the
    annotated video.
    """
    detectors = [video_detector(config.detector, config.device) for _ in range(config.workers)]
    rows = []
    for k, model in enumerate(models):
        if on_model_start:
            on_model_start(model.name)
        hooks = [h for h in (on_frame, first_pass_hook if k == 0 else None) if h is not None]
        run = run_video(model.build, video, detectors, config, _chain(hooks))
        rows.append(
            {
                "model": model.name,
                "weights": "untrained" if model.untrained else model.source,
                "runtime": model.runtime,
                "device": device_name(config.device),
                "dtype": config.precision if model.runtime == "torch" else model.build().precision,
                "threads": run.threads,
                "workers": run.workers,
                "batch_frames": config.batch_frames,
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
