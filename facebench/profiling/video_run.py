"""``facebench profile --video`` as library calls: check the options, run every model's pass, write video_profile.*.

``VideoOptions`` holds the options that only apply to a video; ``plan_video_profile`` checks
everything a user can get wrong (models, detector, video, device, precision) before any file
is written; ``run_video_profile`` runs the passes (video.profile_video), writing the annotated
video along the first; ``write_video_profile`` writes the rows with the protocol (what each
figure measures and how, ``_protocol``) as their meta.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

from facebench.data.detectors import DETECTOR_NAMES
from facebench.device import check_precision, resolve_device
from facebench.errors import FacebenchError
from facebench.modelspec import ModelOptions, ModelRecipe
from facebench.profiling.annotate import AnnotatedVideo
from facebench.profiling.frames import VideoInfo, planned_frames, probe_video
from facebench.profiling.video import (
    WARMUP_BATCH_MAX,
    FrameHook,
    VideoConfig,
    profile_video,
    video_models,
)
from facebench.provenance import environment
from facebench.runfolder import RunFolder

DEFAULT_DETECTOR = "mtcnn"  # when --detector is not given


@dataclass(frozen=True)
class VideoOptions:
    """The ``profile`` options that apply only with ``--video``; None = not given (the default applies)."""

    video: Path | None = None
    detector: str | None = None  # default DEFAULT_DETECTOR
    max_frames: int | None = None
    every: int | None = None  # default 1
    save_annotated: Path | None = None
    batch_frames: int | None = None  # default 1
    workers: int | None = None  # default 1

    def check(self) -> None:
        """Video-only options without a video are a mistake, not something to ignore silently; so is an
        unknown detector. Raises FacebenchError with the option to fix."""
        if self.video is None:
            used = [f"--{f.name.replace('_', '-')}" for f in fields(self) if getattr(self, f.name) is not None]
            if used:
                raise FacebenchError(f"{', '.join(used)} only apply with --video; add --video clip.mp4 or drop them")
        elif (self.detector or DEFAULT_DETECTOR) not in DETECTOR_NAMES:
            raise FacebenchError(f"--detector {self.detector!r} is not one of: {', '.join(DETECTOR_NAMES)}")


@dataclass(frozen=True)
class VideoPlan:
    """A checked ``profile --video`` run: the models read, the video probed, the settings resolved."""

    models: list[ModelRecipe]
    info: VideoInfo
    config: VideoConfig
    save_annotated: Path | None = None

    @property
    def frames(self) -> int | None:
        """Frames each pass processes, from the container's count (None if unknown)."""
        return planned_frames(self.info, self.config.every, self.config.max_frames)


def plan_video_profile(
    models: list[str],
    options: VideoOptions,
    *,
    device: str,
    precision: str,
    warmup: int,
    threads: int | None,
    channels_last: bool,
    model_options: ModelOptions = ModelOptions(),
) -> VideoPlan:
    """Check the inputs in the order a user fixes them (models, options, video, device) and resolve the defaults."""
    if options.video is None:
        raise ValueError("plan_video_profile needs options.video")
    if not models:
        raise FacebenchError("--models: give at least one model name (see `facebench models`)")
    recipes = video_models(models, model_options)  # unknown names and bad files fail before the video is opened
    if any(r.runtime != "torch" for r in recipes) and (precision != "fp32" or channels_last):
        raise FacebenchError("a .onnx/.xml model runs in its own precision without channels-last; profile it "
                             "without --precision and --channels-last")  # fmt: skip
    options.check()
    info = probe_video(options.video)
    torch_device = resolve_device(device)
    check_precision(torch_device, precision)
    config = VideoConfig(torch_device, precision, options.detector or DEFAULT_DETECTOR, options.every or 1,
                         options.max_frames, warmup, threads, channels_last, options.batch_frames or 1,
                         options.workers or 1)  # fmt: skip
    return VideoPlan(recipes, info, config, options.save_annotated)


def run_video_profile(
    plan: VideoPlan, on_model_start: Callable[[str], None] | None = None, on_frame: FrameHook | None = None
) -> list[dict[str, Any]]:
    """One result row per model (video.profile_video); the annotated video, when asked, is drawn on the first pass."""
    info = plan.info
    if plan.save_annotated is None:
        return profile_video(plan.models, info.path, plan.config, on_model_start, on_frame=on_frame)
    with AnnotatedVideo(plan.save_annotated, info.fps / plan.config.every, info.width, info.height) as annotated:
        return profile_video(
            plan.models, info.path, plan.config, on_model_start, on_frame=on_frame,
            first_pass_hook=lambda frame, result, ids: annotated.write(frame.bgr, result.faces, ids),
        )  # fmt: skip


def write_video_profile(
    plan: VideoPlan, rows: list[dict[str, Any]], out_dir: str | Path
) -> tuple[list[Path], dict[str, Any]]:
    """Write video_profile.csv, .md and .json (rows + meta: settings, protocol, environment) into ``out_dir``.

    Returns the paths written and the meta recorded.
    """
    info, config = plan.info, plan.config
    meta = {
        "video": str(info.path),
        "video_size": f"{info.width}x{info.height}",
        "video_fps": info.fps,
        "video_frames": info.frame_count,
        "frames": rows[0]["frames"],
        "every": config.every,
        "max_frames": config.max_frames,
        "detector": config.detector,
        "device": rows[0]["device"],
        "dtype": config.precision,
        "threads": rows[0]["threads"],
        "workers": config.workers,
        "batch_frames": config.batch_frames,
        "channels_last": config.channels_last,
        **_protocol(config),
        "annotated_video": str(plan.save_annotated) if plan.save_annotated else None,
        "environment": environment(),
    }
    return RunFolder(out_dir).write_video_profile(list(rows), title="facebench profile --video", meta=meta), meta


def _protocol(config: VideoConfig) -> dict[str, str]:
    """What each figure measures and how, in words, for the meta (warmup, stages, latency, identity, memory)."""
    batch_frames, workers = config.batch_frames, config.workers
    return {
        "warmup": f"{config.warmup} untimed passes of the whole pipeline over the first frame"
        + (f", one over a group of {batch_frames} copies of it" if batch_frames > 1 else "")
        + f", then one untimed forward at each batch size 1-{WARMUP_BATCH_MAX}" if config.warmup else "none",
        "stages": "decode = read frame (+ grab skipped ones) + BGR->RGB; detect = detector on the full frame; "
        f"align = 5-point similarity warp of every face to 112x112; embed = one batch of the faces of "
        f"{batch_frames} consecutive frame(s) (normalise + forward + embeddings to host); a group's align and "
        "embed times are shared among its frames in proportion to their faces",
        "latency": "per frame, ms; std is the sample std (ddof=1); total = sum of the four stages; "
        + ("fps = 1000 / total mean" if workers == 1 else
           f"fps = frames / wall seconds (the {workers} workers overlap frames; threads is per worker, and the "
           "decoding thread runs beside them)"),
        "identity": "IoU tracks; track_cos_consecutive = mean cosine of successive faces of a track, "
        "track_cos_between = mean cosine over all face pairs from different tracks",
        "memory": "peak during the model's whole pass (weights, activations, frame buffers; detectors built "
        "and checkpoint files read before)",
    }
