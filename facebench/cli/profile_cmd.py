"""``facebench profile``: practical metrics (the study's Table 2) for zoo models; per-stage costs with --video."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape

from facebench.cli.app import command, console
from facebench.cli.model_options import (
    BgrOption,
    InputMeanOption,
    InputSizeOption,
    InputStdOption,
    RuntimeOption,
    WeightsOption,
    model_options,
)
from facebench.cli.option_types import DEVICE_METAVAR, Detector, Precision, check_device

if TYPE_CHECKING:
    from facebench.profiling.video_run import VideoPlan


DEFAULT_OUT = "facebench-out/profile"
DEFAULT_VIDEO_MODELS = "mobilenet"  # the quickest student: one model's pass over a clip takes minutes on 2 cores


def parse_model_list(models: str) -> list[str]:
    """'r101, r18,mobilenet' -> ['r101', 'r18', 'mobilenet'] (order kept, duplicates dropped)."""
    names = [n.strip() for n in models.split(",") if n.strip()]
    return list(dict.fromkeys(names))


@command("profile", lock="out", out_files=("save_annotated",))
def profile(
    models: str | None = typer.Option(
        None, help="Default: r101,r18,mobilenet (the study's teacher and students); with --video: mobilenet. "
        "Comma-separated zoo names (see `facebench models`; seeded random weights), run "
        "folders (their best.pt, else checkpoint.pt), checkpoint files, .onnx/.xml files or external models (dlib; "
        "not with --video)."),
    weights: WeightsOption = None,
    runtime: RuntimeOption = None,
    input_size: InputSizeOption = None,
    input_mean: InputMeanOption = None,
    input_std: InputStdOption = None,
    bgr: BgrOption = False,
    device: str = typer.Option("auto", callback=check_device, metavar=DEVICE_METAVAR,
                               help="auto: CUDA when available."),
    batch_size: int = typer.Option(1, min=1, help="Images per forward pass."),
    warmup: int = typer.Option(20, min=0, help="Untimed forward passes before timing."),
    iters: int = typer.Option(100, min=1, help="Timed forward passes."),
    threads: int | None = typer.Option(
        None, min=1, help="CPU threads to pin, torch's and OpenCV's (with --video --workers N: per worker).",
        show_default="theirs, usually the core count; with --video --workers N: the cores shared out"),
    precision: Precision = typer.Option("fp32", help="Weights and input cast to it."),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC memory format for weights and input."),
    out: Path = typer.Option(Path(DEFAULT_OUT), help="Folder for profile.csv, profile.md, profile.json "
                             "(video_profile.* with --video), under the current directory unless absolute."),
    video: Path | None = typer.Option(
        None, help="Profile decode/detect/align/embed per frame of this video instead (video_profile.* in --out; "
        "--warmup = untimed passes over the first frame; --batch-size and --iters do not apply)."),
    detector: Detector | None = typer.Option(None, help="With --video: the face detector (mtcnn, yunet, retinaface, haar).", show_default="mtcnn"),
    max_frames: int | None = typer.Option(None, min=1, help="With --video: process at most N frames."),
    every: int | None = typer.Option(None, min=1, help="With --video: process every K-th frame.", show_default="1"),
    save_annotated: Path | None = typer.Option(
        None, help="With --video: also write the video with boxes, landmarks and track ids (mp4v)."),
    batch_frames: int | None = typer.Option(
        None, min=1, help="With --video: embed the faces of N consecutive frames as one batch (more throughput, "
        "N frames more latency).", show_default="1"),
    workers: int | None = typer.Option(
        None, min=1, help="With --video: process N groups of frames at once, one thread each (fps is then "
        "frames / wall seconds).", show_default="1"),
) -> None:
    """Time and count models: params, size, GMACs/GFLOPs, latency ms (mean, std, p50, p95), memory.

    Runs on random 112x112 input, so no dataset is needed. Every row records the device,
    dtype, batch size and thread count it was measured with.
    """
    from facebench.allocator import tune_allocator
    from facebench.profiling.video_run import VideoOptions, plan_video_profile

    tune_allocator()
    spec_options = model_options(weights, runtime, input_size, input_mean, input_std, bgr)
    options = VideoOptions(video, detector, max_frames, every, save_annotated, batch_frames, workers)
    if video is not None:
        names = parse_model_list(models if models is not None else DEFAULT_VIDEO_MODELS)
        plan = plan_video_profile(names, options, device=device, precision=precision, warmup=warmup, threads=threads,
                                  channels_last=channels_last, model_options=spec_options)  # fmt: skip
        return _profile_video(plan, out)
    options.check()

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from facebench.device import check_precision, resolve_device
    from facebench.profiling.profile import DEFAULT_MODELS, profile_models, write_profile
    from facebench.profiling.runtime import RuntimeConfig

    names = parse_model_list(models) if models is not None else list(DEFAULT_MODELS)
    if not names:
        raise typer.BadParameter("give at least one model name", param_hint="--models")
    torch_device = resolve_device(device)
    check_precision(torch_device, precision)
    config = RuntimeConfig(torch_device, precision, batch_size, warmup, iters, threads, channels_last)

    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task_ids: dict[str, int] = {}

        def start(name: str, total: int) -> None:
            task_ids["current"] = progress.add_task(name, total=total)

        rows = profile_models(names, config, start, lambda: progress.advance(task_ids["current"]), spec_options)

    paths, meta = write_profile(rows, config, out)
    console.print(_rich_table(rows, meta))
    for warning in meta["warnings"]:
        console.print(f"[bold yellow]warning:[/] {escape(warning)}", highlight=False)
    console.print(f"wrote {', '.join(p.name for p in paths)} in {out.resolve()}", highlight=False, soft_wrap=True)


def _profile_video(plan: VideoPlan, out: Path) -> None:
    """Run every model's pass over the video with a progress bar, write video_profile.* and print a summary."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    from facebench.profiling.video_run import run_video_profile, write_video_profile

    columns = (TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task: dict[str, Any] = {}

        def start(name: str) -> None:
            task["id"] = progress.add_task(name, total=plan.frames)

        rows = run_video_profile(plan, start, on_frame=lambda *_: progress.advance(task["id"]))
    paths, meta = write_video_profile(plan, rows, out)
    console.print(_video_table(rows, meta))
    annotated = f", {plan.save_annotated}" if plan.save_annotated else ""
    console.print(f"wrote {', '.join(p.name for p in paths)} in {out.resolve()}{annotated}", highlight=False,
                  soft_wrap=True)


MEMORY_HEADERS = {  # the one memory kind shown on screen, the first found; every kind is in the files
    "mem_rss_peak_growth_mb": "peak RSS\ngrowth MB",
    "mem_alloc_peak_mb": "CUDA alloc\npeak MB",
}


def _rich_table(rows: list[dict], meta: dict) -> object:
    """The on-screen summary, narrow enough for 80 columns with every number whole (numbers never wrap; a
    long model name folds): one line per model, units in the headers. Size, GFLOPs, p95 and the other
    memory kinds are in the files."""
    from rich.table import Table

    title = f"{meta['device']} | {meta['dtype']} | batch {meta['batch_size']} | {meta['threads']} threads"
    table = Table(title=title, caption="all columns (size, GFLOPs, p95, every memory kind): profile.csv/.md/.json")
    memory = next((k for k in MEMORY_HEADERS if any(k in row for row in rows)), None)
    table.add_column("model", overflow="fold")
    headers = ["params\nM", "GMACs", "latency ms\nmean ± std", "p50\nms", "img/s"]
    for header in headers + ([MEMORY_HEADERS[memory]] if memory else []):
        table.add_column(header, justify="right", no_wrap=True)
    for row in rows:
        cells = [
            _cell(row["params_m"], ".2f"),
            _cell(row["gmacs"], ".3f"),
            f"{_sig4(row['latency_ms_mean'])} ± {_sig4(row['latency_ms_std'])}",
            _sig4(row["latency_ms_p50"]),
            _sig4(row["throughput_ips"]),
        ]
        table.add_row(row["model"], *cells, *([_cell(row.get(memory), ".0f")] if memory else []))
    return table


def _sig4(value: float) -> str:
    """About four significant figures, so big values stay narrow: 4410, 160.1, 2.35."""
    return format(value, ".0f" if value >= 1000 else ".1f" if value >= 100 else ".2f")


def _cell(value: float | None, spec: str) -> str:
    """A number in ``spec`` format, or 'n/a' where it was not measured (None or NaN)."""
    return "n/a" if value is None or value != value else format(value, spec)


def _video_table(rows: list[dict], meta: dict) -> object:
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
        mean, std, p95 = (f"{stage}_ms_{stat}" for stat in ("mean", "std", "p95"))
        table.add_row(f"{stage} ms", *(f"{r[mean]:.1f} ± {r[std]:.1f} ({r[p95]:.1f})" for r in rows))
    table.add_row("fps (end to end)", *(f"{r['fps']:.2f}" for r in rows))
    table.add_row("faces", *(f"{r['faces_per_frame']:.2f}" for r in rows))
    cosines = (f"{r['track_cos_consecutive']:.3f} / {r['track_cos_between']:.3f}" for r in rows)
    table.add_row("cos same / other track", *cosines)
    for key in (k for k in rows[0] if k.startswith("mem_") and k.endswith("_mb")):
        table.add_row(key, *(f"{r[key]:.1f}" for r in rows))
    return table
