"""``facebench pack``: identity folders -> insightface train.rec / train.idx / property."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import Align


@command("pack", lock="out")
def pack(
    src: Path = typer.Option(..., "--src", help="Identity folders: SRC/<identity>/<image>."),
    out: Path = typer.Option(..., "--out", help="Folder for train.rec, train.idx and property."),
    align: Align = typer.Option("center", help="Rule for images that are not 112x112."),
    min_images: int = typer.Option(1, min=1, help="Leave out identities with fewer images."),
    max_images: int | None = typer.Option(None, min=1, help="Keep at most this many images per identity (first by "
                                          "name)."),
    skip_bad: bool = typer.Option(False, "--skip-bad", help="Skip and count unreadable images instead of stopping."),
    quality: int = typer.Option(95, min=1, max=100, help="JPEG quality for images that are re-encoded."),
) -> None:
    """Pack identity folders into insightface's RecordIO training format (labels = sorted identity names)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

    from facebench.data.folders import scan_identity_folders
    from facebench.data.images import check_align
    from facebench.data.recordio import pack_folders

    check_align(align)
    total = len(scan_identity_folders(src, min_images=min_images, max_images=max_images).files)
    columns = (TextColumn("packing"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
    with Progress(*columns, console=console, transient=True) as progress:
        task = progress.add_task("pack", total=total)
        summary = pack_folders(src, out, align=align, min_images=min_images, max_images=max_images,
                               skip_bad=skip_bad, quality=quality,
                               progress=lambda n: progress.advance(task, n))
    console.print(
        f"wrote {summary.images} images of {summary.identities} identities to {summary.paths.rec} "
        f"(+ {summary.paths.idx.name}, {summary.paths.property.name}): {summary.copied} stored as they were "
        f"(112x112), {summary.reencoded} cropped with align={align} and JPEG-encoded"
    )
    if summary.skipped:
        console.print(f"skipped {len(summary.skipped)} unreadable images, e.g. {summary.skipped[0]}")
