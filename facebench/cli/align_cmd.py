"""``facebench align``: detect, align to the ArcFace 112x112 template, same layout in dst."""

from __future__ import annotations

import functools
from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import AlignDetector


@command("align", lock="dst")
def align(
    src: Path = typer.Option(..., "--src", help="Folder of images (any depth), e.g. identity folders."),
    dst: Path = typer.Option(..., "--dst", help="Output folder: the same relative paths, 112x112, plus align_report.csv."),
    detector: AlignDetector = typer.Option("mtcnn", help="mtcnn (weights from PyPI on first use), yunet "
                                           "(OpenCV) and retinaface (PyTorch; both shipped with facebench), haar "
                                           "(OpenCV cascades) or center (no detection)."),
    workers: int = typer.Option(1, min=1, help="Processes aligning in parallel (one thread each)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count unreadable images instead of stopping."),
) -> None:
    """Align faces to the 112x112 ArcFace crop; resumable (files already aligned are skipped).

    A photo without a face is centre-cropped and marked fallback=1 in the report.
    """
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from facebench.data.align_folder import align_folder, list_source_images

    total = len(list_source_images(src)) if src.is_dir() else 0
    columns = (TextColumn(f"aligning ({detector})"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("align", total=total)
        summary = align_folder(src, dst, detector=detector, workers=workers, skip_bad=skip_bad,
                               progress=lambda n: progress.advance(task, n))
    share = (lambda n: f"{100 * n / summary.aligned:.1f} %") if summary.aligned else (lambda n: "-")
    per_image_ms = 1e3 * summary.wall_s / summary.processed if summary.processed else float("nan")
    say = functools.partial(console.print, soft_wrap=True, highlight=False)
    say(
        f"{summary.images} images in {src}: {summary.already_done} already done, {summary.processed} processed "
        f"now ({per_image_ms:.1f} ms per image wall clock, {summary.mean_time_ms:.1f} ms mean per image in a worker)"
    )
    if detector == "center":
        say(f"centre-cropped {summary.aligned} images")
    else:
        say(f"aligned on a detected face: {summary.by_detector} ({share(summary.by_detector)}); "
            f"centre-crop fallback (no face): {summary.fallback} ({share(summary.fallback)})")
    if summary.corrupt:
        say(f"skipped {len(summary.corrupt)} unreadable images, e.g. {summary.corrupt[0]}")
    say(f"report: {summary.report}")
