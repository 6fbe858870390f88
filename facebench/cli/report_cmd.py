"""``facebench report``: the study's Tables 1-2, Figure 1, an ROC of every run and a summary, from run folders;
or, for a deploy bench's runs, the compression table of its variants."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console


@command("report")
def report(
    runs: Path = typer.Option(Path("runs"), help="Folder searched (recursively) for run folders "
                              "(config.json + verify.json) and profile.json files."),
    out: Path = typer.Option(Path("reports"), help="Folder for table1/2 .md/.csv, figure1.png/.svg, roc.png, "
                             "results.json, summary.md."),
    profile: list[Path] | None = typer.Option(None, help="Extra profile.json (or a folder holding one) for "
                                              "Table 2 and Figure 1; repeatable."),
) -> None:
    """Build the report from run folders only: every table cell names the run folder or file it came from.

    A deploy bench's runs (variant folders with variant.json) give the deploy report instead: compression.md/.csv,
    table2.md/.csv, figure_deploy.png/.svg, results.json, summary.md.
    """
    from facebench.report.build import build_any_report

    result = build_any_report(runs, out, profile or [])
    for note in result.notes:
        console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)
    rows = f"{len(result.rows)} table rows; " if result.rows else ""
    console.print(f"{rows}wrote {', '.join(str(p) for p in result.paths)}",
                  highlight=False, soft_wrap=True)
