"""``facebench models``: every registered model with its counts, computed on the spot."""

from __future__ import annotations

import json
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
    """List zoo models with params (M), fp32 size (MB, MiB), GMACs (ptflops) and GFLOPs (FlopCounterMode) at 1x3x112x112."""
    import pandas as pd
    from rich.progress import track

    from facebench.models import create_model, list_models, model_spec
    from facebench.profiling.static import static_metrics
    from facebench.tables import markdown_table

    names = list_models(pattern)
    if not names:
        raise typer.BadParameter(f"no model matches {pattern!r}; names: {', '.join(list_models())}")
    rows = []
    for name in track(names, description="counting", console=console, transient=True, disable=format != ListFormat.table):
        spec = model_spec(name)
        model = create_model(name)
        rows.append(
            {
                "model": name,
                "family": spec.family,
                "feature_map": f"{model.feature_channels}x7x7",
                **static_metrics(model).as_dict(),
                "description": spec.description,
            }
        )
    if format == ListFormat.json:
        typer.echo(json.dumps(rows, indent=2))
    elif format == ListFormat.csv:
        typer.echo(pd.DataFrame(rows).to_csv(index=False), nl=False)
    elif format == ListFormat.md:
        typer.echo(markdown_table(rows))
    else:
        from rich.table import Table

        table = Table(title="facebench model zoo (1x3x112x112, fp32; MB = 1e6 bytes, MiB = 2^20 bytes)")
        for header in ("model", "family", "feature map", "params (M)", "size (MB)", "size (MiB)", "GMACs", "GFLOPs"):
            table.add_column(header, justify="left" if header in ("model", "family", "feature map") else "right")
        for r in rows:
            table.add_row(
                r["model"], r["family"], r["feature_map"], f"{r['params_m']:.2f}", f"{r['size_mb']:.1f}",
                f"{r['size_mib']:.1f}", f"{r['gmacs']:.3f}", f"{r['gflops']:.3f}",
            )  # fmt: skip
        console.print(table)
