"""``facebench models``: every registered model with its counts (computed once per model definition, then cached)."""

from __future__ import annotations

import json
from collections.abc import Iterable
from enum import Enum

import typer

from facebench.cli.app import command, console


class ListFormat(str, Enum):
    table = "table"
    csv = "csv"
    md = "md"
    json = "json"


@command("models")
def models(
    format: ListFormat = typer.Option(ListFormat.table, "--format", help="table (on screen), csv, md or json."),
    pattern: str | None = typer.Option(None, help="Glob filter on names, e.g. 'ir*'."),
) -> None:
    """List zoo models with params (M), fp32 size (MB, MiB), GMACs (ptflops) and GFLOPs (FlopCounterMode) at 1x3x112x112.

    Counts are cached in ~/.cache/facebench/model_counts.json (or $XDG_CACHE_HOME, $FACEBENCH_CACHE), recomputed
    when a model definition, torch or ptflops changes.
    """
    from rich.progress import track

    from facebench.profiling.model_counts import zoo_rows

    def progress(names: list[str]) -> Iterable[str]:
        return track(names, description="counting", console=console, transient=True, disable=format != ListFormat.table)

    rows, names = zoo_rows(pattern, on_compute=progress)
    if not rows:
        raise typer.BadParameter(f"no model matches {pattern!r}; names: {', '.join(names)}")
    if format == ListFormat.json:
        typer.echo(json.dumps(rows, indent=2))
    elif format == ListFormat.csv:
        import pandas as pd

        typer.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    elif format == ListFormat.md:
        from facebench.tables import markdown_table

        typer.echo(markdown_table(rows))
    else:
        from rich.table import Table

        table = Table(title="facebench model zoo (1x3x112x112, fp32; MB = 1e6 bytes, MiB = 2^20 bytes)")
        for header in ("model", "family", "feature\nmap", "params\n(M)", "size\n(MB)", "size\n(MiB)", "GMACs", "GFLOPs"):
            table.add_column(header, justify="left" if header in ("model", "family", "feature\nmap") else "right",
                             no_wrap=True)  # fits 80 columns with every name and number whole
        for r in rows:
            table.add_row(
                r["model"], r["family"], r["feature_map"], f"{r['params_m']:.2f}", f"{r['size_mb']:.1f}",
                f"{r['size_mib']:.1f}", f"{r['gmacs']:.3f}", f"{r['gflops']:.3f}",
            )  # fmt: skip
        console.print(table)
