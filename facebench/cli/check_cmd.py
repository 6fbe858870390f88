"""``facebench check``: accuracy and latency against a baseline; exit 1 on a regression (for CI)."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import non_negative

REGRESSION_EXIT_CODE = 1


@command("check")
def check(
    baseline: Path = typer.Option(..., help="Baseline results (a results.json kept aside, e.g. reports/baseline.json)."),
    current: Path | None = typer.Option(None, help="Folder with today's results.json (from facebench report), or a "
                                        "runs folder to read directly.", show_default="the baseline's folder"),
    acc_tol: float = typer.Option(0.5, min=0.0, callback=non_negative,
                                  help="Allowed accuracy drop, percentage points."),
    latency_tol: float = typer.Option(0.25, min=0.0, callback=non_negative,
                                      help="Allowed latency growth, relative (0.25 = +25%)."),
    fnmr_tol: float = typer.Option(1.0, min=0.0, callback=non_negative,
                                   help="Allowed FNMR growth at each FMR of an all-pairs set, percentage points."),
    update: bool = typer.Option(False, "--update", help="Write the current results as the new baseline (exit 0)."),
) -> None:
    """Compare accuracy per model, method and set, FNMR per model, all-pairs set and FMR, and latency per model
    and setting, with a baseline."""
    from facebench.errors import FacebenchError
    from facebench.fileio import write_json_atomic
    from facebench.report.check import (
        ACCURACY_KEY,
        LATENCY_KEY,
        OPERATING_KEY,
        compare,
        current_results,
        load_results,
    )

    if not update and not baseline.is_file():
        raise FacebenchError(f"--baseline {baseline}: no such file; keep a results.json from facebench report there, "
                             "or write one with --update")
    now = (current_results(current) if current is not None
           else current_results(baseline.parent, "--current (default: the --baseline's folder)"))
    if update:
        write_json_atomic(baseline, now)
        console.print(f"wrote {baseline}: {len(now['accuracy'])} accuracy and {len(now['latency'])} latency entries")
        return
    findings = compare(load_results(baseline), now, acc_tol, latency_tol, fnmr_tol)
    failed = [f for f in findings if f.failed]
    skipped = [f for f in findings if f.status == "not compared"]
    for kind, fields, unit in (("accuracy", ACCURACY_KEY, "%"), ("fnmr", OPERATING_KEY, "% FNMR"),
                               ("latency", LATENCY_KEY, "ms")):
        rows = [f for f in failed if f.kind == kind]
        if rows:
            console.print(_table(f"{kind} regressions", fields, unit, rows), highlight=False, soft_wrap=True,
                          markup=False)
    for f in skipped:
        console.print(f"not compared: latency of {', '.join(map(str, f.key))} (no current measurement with these "
                      "settings)", highlight=False, soft_wrap=True)
    console.print(f"{len(findings) - len(skipped)} entries compared with {baseline} (accuracy tolerance {acc_tol} pp, "
                  f"FNMR +{fnmr_tol} pp, latency +{latency_tol:.0%}), {len(failed)} failed", highlight=False,
                  soft_wrap=True)
    if failed:
        raise typer.Exit(REGRESSION_EXIT_CODE)


def _table(title: str, fields: tuple[str, ...], unit: str, findings: list) -> str:
    """A Markdown pipe table (long lines, never wrapped: readable in CI logs and pasteable into a review)."""
    from facebench.report.markdown import text_table

    rows = [{**dict(zip(fields, map(str, f.key), strict=True)), f"baseline {unit}": f"{f.baseline:.2f}",
             f"current {unit}": "-" if f.current is None else f"{f.current:.2f}", "change": f.change,
             "status": f.status} for f in findings]  # fmt: skip
    return f"{title}:\n\n{text_table(rows)}\n"
