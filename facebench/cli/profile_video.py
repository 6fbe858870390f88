"""``facebench profile --video``: the video half of the profile command (see profile_cmd).

Kept apart from profile_cmd so the random-input profile stays as it is; the command calls
``profile_video_cli`` when ``--video`` is given.
"""

from __future__ import annotations

from contextlib import nullcontext
from pathlib import Path
from typing import Any

from facebench.cli.app import console
from facebench.errors import FacebenchError


def reject_video_options(**given: object) -> None:
    """Video-only options without --video are a mistake, not something to ignore silently."""
    used = [f"--{name.replace('_', '-')}" for name, value in given.items() if value is not None]
    if used:
        raise FacebenchError(f"{', '.join(used)} only apply with --video; add --video clip.mp4 or drop them")


def profile_video_cli(
    video: Path,
    models: list[str],
    *,
    device: str,
    precision: str,
    warmup: int,
    threads: int | None,
    channels_last: bool,
    out: Path,
    detector: str | None,
    max_frames: int | None,
    every: int | None,
    save_annotated: Path | None,
    batch_frames: int,
    workers: int,
) -> None:
    """Check the inputs, run every model's pass with a progress bar, write video_profile.* and print a summary."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from facebench.data.detectors import DETECTOR_NAMES
    from facebench.device import resolve_device
    from facebench.profiling.annotate import AnnotatedVideo
    from facebench.profiling.frames import planned_frames, probe_video
    from facebench.profiling.runtime import check_precision
    from facebench.profiling.video import WARMUP_BATCH_MAX, VideoConfig, profile_video, video_models
    from facebench.provenance import environment
    from facebench.report.tables import write_tables

    if not models:
        raise FacebenchError("--models: give at least one model name (see `facebench models`)")
    recipes = video_models(models)  # unknown names and bad checkpoints fail before the video is opened
    detector = detector or "mtcnn"
    if detector not in DETECTOR_NAMES:
        raise FacebenchError(f"--detector {detector!r} is not one of: {', '.join(DETECTOR_NAMES)}")
    info = probe_video(video)
    torch_device = resolve_device(device)
    check_precision(torch_device, precision)
    every = every or 1
    config = VideoConfig(torch_device, precision, detector, every, max_frames, warmup, threads, channels_last,
                         batch_frames, workers)  # fmt: skip
    total = planned_frames(info, every, max_frames)

    annotated = AnnotatedVideo(save_annotated, info.fps / every, info.width, info.height) if save_annotated else None
    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress, annotated or nullcontext():
        task: dict[str, Any] = {}

        def start(name: str) -> None:
            task["id"] = progress.add_task(name, total=total)

        rows = profile_video(
            recipes, video, config, start,
            on_frame=lambda *_: progress.advance(task["id"]),
            first_pass_hook=(lambda frame, result, ids: annotated.write(frame.bgr, result.faces, ids)) if annotated else None,
        )  # fmt: skip

    meta = {
        "video": str(video),
        "video_size": f"{info.width}x{info.height}",
        "video_fps": info.fps,
        "video_frames": info.frame_count,
        "frames": rows[0]["frames"],
        "every": every,
        "max_frames": max_frames,
        "detector": detector,
        "device": rows[0]["device"],
        "dtype": precision,
        "threads": rows[0]["threads"],
        "workers": workers,
        "batch_frames": batch_frames,
        "channels_last": channels_last,
        "warmup": f"{warmup} untimed passes of the whole pipeline over the first frame"
        + (f", one over a group of {batch_frames} copies of it" if batch_frames > 1 else "")
        + f", then one untimed forward at each batch size 1-{WARMUP_BATCH_MAX}" if warmup else "none",
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
        "annotated_video": str(save_annotated) if save_annotated else None,
        "environment": environment(),
    }
    paths = write_tables(rows, out, "video_profile", title="facebench profile --video", meta=meta)
    console.print(_rich_table(rows, meta))
    console.print(f"wrote {', '.join(str(p) for p in paths)}" + (f", {save_annotated}" if save_annotated else ""))


def _rich_table(rows: list[dict], meta: dict) -> object:
    """The on-screen summary: one column per model, one line per figure; ms as mean ± std (p95)."""
    from rich.table import Table

    title = (f"{meta['video']} | {meta['frames']} frames | {meta['detector']} | {meta['device']} | "
             f"{meta['dtype']} | {meta['workers']} worker(s) x {meta['threads']} threads | "
             f"{meta['batch_frames']} frame(s) per batch")  # fmt: skip
    table = Table(title=title)
    table.add_column("per frame")
    for row in rows:
        table.add_column(row["model"] if row["weights"] == "untrained" else f"{row['model']} ({row['weights']})",
                         justify="right")  # fmt: skip
    for stage in ("decode", "detect", "align", "embed", "total"):
        cells = (f"{r[f'{stage}_ms_mean']:.1f} ± {r[f'{stage}_ms_std']:.1f} ({r[f'{stage}_ms_p95']:.1f})" for r in rows)
        table.add_row(f"{stage} ms", *cells)
    table.add_row("fps (end to end)", *(f"{r['fps']:.2f}" for r in rows))
    table.add_row("faces", *(f"{r['faces_per_frame']:.2f}" for r in rows))
    table.add_row("cos same / other track", *(f"{r['track_cos_consecutive']:.3f} / {r['track_cos_between']:.3f}" for r in rows))
    for key in (k for k in rows[0] if k.startswith("mem_") and k.endswith("_mb")):
        table.add_row(key, *(f"{r[key]:.1f}" for r in rows))
    return table
