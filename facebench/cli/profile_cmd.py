"""``facebench profile``: practical metrics (the study's Table 2) for zoo models; per-stage costs with --video."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import typer

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

if TYPE_CHECKING:
    from facebench.profiling.video_run import VideoPlan


def parse_model_list(models: str) -> list[str]:
    """'r101, r18,mobilenet' -> ['r101', 'r18', 'mobilenet'] (order kept, duplicates dropped)."""
    names = [n.strip() for n in models.split(",") if n.strip()]
    return list(dict.fromkeys(names))


@command("profile")
def profile(
    models: str = typer.Option(
        "r101,r18,mobilenet", help="Comma-separated zoo names (see `facebench models`; seeded random weights), run "
        "folders (their best.pt, else checkpoint.pt), checkpoint files, .onnx/.xml files or external models (dlib; "
        "not with --video)."),
    weights: WeightsOption = None,
    runtime: RuntimeOption = None,
    input_size: InputSizeOption = None,
    input_mean: InputMeanOption = None,
    input_std: InputStdOption = None,
    bgr: BgrOption = False,
    device: str = typer.Option("auto", help="auto (CUDA when available), cpu, cuda or cuda:N."),
    batch_size: int = typer.Option(1, min=1, help="Images per forward pass."),
    warmup: int = typer.Option(20, min=0, help="Untimed forward passes before timing."),
    iters: int = typer.Option(100, min=1, help="Timed forward passes."),
    threads: int | None = typer.Option(
        None, min=1, help="CPU threads to pin, torch's and OpenCV's (default: theirs, usually the core count; "
        "with --video --workers N: per worker, default the cores shared out)."),
    precision: str = typer.Option("fp32", help="fp32, fp16 or bf16 (weights and input cast to it)."),
    channels_last: bool = typer.Option(False, "--channels-last", help="NHWC memory format for weights and input."),
    out: Path = typer.Option(Path("reports/profile"), help="Folder for profile.csv, profile.md, profile.json."),
    video: Path | None = typer.Option(
        None, help="Profile decode/detect/align/embed per frame of this video instead (video_profile.* in --out; "
        "--warmup = untimed passes over the first frame; --batch-size and --iters do not apply)."),
    detector: str | None = typer.Option(None, help="With --video: mtcnn (default) or haar."),
    max_frames: int | None = typer.Option(None, min=1, help="With --video: process at most N frames."),
    every: int | None = typer.Option(None, min=1, help="With --video: process every K-th frame (default 1)."),
    save_annotated: Path | None = typer.Option(
        None, help="With --video: also write the video with boxes, landmarks and track ids (mp4v)."),
    batch_frames: int | None = typer.Option(
        None, min=1, help="With --video: embed the faces of N consecutive frames as one batch (default 1; "
        "more throughput, N frames more latency)."),
    workers: int | None = typer.Option(
        None, min=1, help="With --video: process N groups of frames at once, one thread each (default 1; "
        "fps is then frames / wall seconds)."),
) -> None:
    """Time and count models: params, size, GMACs/GFLOPs, latency ms (mean, std, p50, p95), memory.

    Runs on random 112x112 input, so no dataset is needed. Every row records the device,
    dtype, batch size and thread count it was measured with.
    """
    from facebench.profiling.video_run import VideoOptions, plan_video_profile

    spec_options = model_options(weights, runtime, input_size, input_mean, input_std, bgr)
    options = VideoOptions(video, detector, max_frames, every, save_annotated, batch_frames, workers)
    if video is not None:
        plan = plan_video_profile(parse_model_list(models), options, device=device, precision=precision,
                                  warmup=warmup, threads=threads, channels_last=channels_last,
                                  model_options=spec_options)  # fmt: skip
        return _profile_video(plan, out)
    options.check()

    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from facebench.device import check_precision, resolve_device
    from facebench.profiling.profile import profile_models, write_profile
    from facebench.profiling.runtime import RuntimeConfig

    names = parse_model_list(models)
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
    console.print(f"wrote {', '.join(str(p) for p in paths)}")


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
    console.print(f"wrote {', '.join(str(p) for p in paths)}{annotated}")


def _rich_table(rows: list[dict], meta: dict) -> object:
    """The on-screen summary: one line per model, units in the headers."""
    from rich.table import Table

    title = f"{meta['device']} | {meta['dtype']} | batch {meta['batch_size']} | {meta['threads']} threads"
    table = Table(title=title)
    memory_keys = list(dict.fromkeys(k for row in rows for k in row if k.startswith("mem_") and k.endswith("_mb")))
    headers = ["model", "params (M)", "size (MB)", "GMACs", "GFLOPs", "latency ms mean ± std", "p50 ms", "p95 ms",
               "img/s"]  # fmt: skip
    for header in headers + memory_keys:
        table.add_column(header, justify="left" if header == "model" else "right")
    for row in rows:
        table.add_row(
            row["model"],
            _cell(row["params_m"], ".2f"),
            f"{row['size_mb']:.1f}",
            _cell(row["gmacs"], ".3f"),
            _cell(row["gflops"], ".3f"),
            f"{row['latency_ms_mean']:.2f} ± {row['latency_ms_std']:.2f}",
            f"{row['latency_ms_p50']:.2f}",
            f"{row['latency_ms_p95']:.2f}",
            f"{row['throughput_ips']:.1f}",
            *(_cell(row.get(k), ".1f") for k in memory_keys),
        )
    return table


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
