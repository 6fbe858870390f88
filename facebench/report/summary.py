"""summary.md: the report's index, with the commands, machines, versions and wall times behind it.

Wall times come from the files: training = the run's checkpoint.pt modification time minus
the start time config.json records (since the last resume, when resumed); verification =
the sum of verify.json's per-set ``wall_s``; bench steps = ``bench.json`` in the runs
folder when ``facebench bench`` made them (``steps[*]``: ``step``, ``run``, ``status``,
``wall_s``, ``command``; ``total_wall_s``, ``preset``, ``command``, ``environment``).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

from facebench.report.markdown import text_table
from facebench.report.runs import METHODS, ProfileFile, Run
from facebench.runfolder import CHECKPOINT


def train_wall_s(run: Run) -> float:
    """Seconds from config.json's start time to checkpoint.pt's last write (NaN when either is missing)."""
    started = run.environment.get("time_utc")
    checkpoint = run.path / CHECKPOINT
    if not started or not checkpoint.is_file():
        return math.nan
    return checkpoint.stat().st_mtime - datetime.fromisoformat(started).timestamp()


def verify_wall_s(run: Run) -> float:
    return float(sum(row.get("wall_s") or 0.0 for row in run.verify["rows"]))


def machine_line(environment: dict[str, Any]) -> str:
    """'CPU AMD EPYC x2 cores; GPUs: none; torch 2.14.1; host vm'."""
    gpus = ", ".join(environment.get("gpus") or []) or "none"
    return (f"CPU {environment.get('cpu', '?')} x{environment.get('cpu_count', '?')} cores; GPUs: {gpus}; "
            f"torch {environment.get('torch_version', '?')}; host {environment.get('hostname', '?')}")


def _code(text: Any) -> str:
    return f"`{text}`" if text else "-"


def run_table(runs: list[Run]) -> list[dict[str, Any]]:
    """One line per run: what it is, how long it took, which commands made it."""
    lines = []
    for run in runs:
        resumed = run.config.get("resumed_at_step")
        train_s = train_wall_s(run)
        lines.append({
            "run": run.name,
            "model": run.model,
            "method": METHODS[run.method][1],
            "teacher": (run.teacher_ref or {}).get("model", "-"),
            "steps": run.config.get("total_steps", "n/a"),
            "train wall s": "n/a" if math.isnan(train_s) else f"{train_s:.0f}" + (f" (since resume at step {resumed})"
                                                                                  if resumed else ""),
            "verify wall s": f"{verify_wall_s(run):.2f}",
            "sets": ", ".join(f"{s} ({r['n_pairs']} pairs)" for s, r in run.sets.items()),
            "train command": _code(run.environment.get("command")),
            "verify command": _code(run.verify["meta"].get("environment", {}).get("command")),
        })  # fmt: skip
    return lines


def profile_table(profiles: list[ProfileFile]) -> list[dict[str, Any]]:
    rows = []
    for profile in profiles:
        meta = profile.data["meta"]
        rows.append({
            "file": str(profile.path), "models": ", ".join(r["model"] for r in profile.rows),
            "device": meta.get("device", "?"), "dtype": meta.get("dtype", "?"), "batch": meta.get("batch_size", "?"),
            "iters": meta.get("iters", "?"), "command": _code(meta.get("environment", {}).get("command")),
        })  # fmt: skip
    return rows


def bench_section(bench: dict[str, Any] | None) -> str:
    """The bench log: total wall time and each step's status and time."""
    if not bench or bench.get("total_wall_s") is None:
        return ""
    steps = [{"step": s.get("step"), "run": s.get("run", "-"), "status": s.get("status"),
              "wall s": "-" if s.get("wall_s") is None else f"{s['wall_s']:.1f}",
              "equivalent command": _code(s.get("command"))} for s in bench.get("steps", [])]
    total = float(bench["total_wall_s"])
    env = bench.get("environment") or {}
    return (f"## Bench\n\n`{bench.get('command', 'facebench bench')}` (preset `{bench.get('preset', '?')}`): "
            f"total wall time {total / 60:.1f} min ({total:.0f} s); {machine_line(env) if env else ''}\n\n"
            f"{text_table(steps)}\n")


def summary_markdown(
    *,
    report_environment: dict[str, Any],
    runs: list[Run],
    profiles: list[ProfileFile],
    files: dict[str, str],
    notes: list[str],
    bench: dict[str, Any] | None,
    findings: list[str],
) -> str:
    """The summary page: links to every output, what Table 1's tests found, the machines, the bench log,
    every run and profile."""
    machines = dict.fromkeys(machine_line(r.environment) for r in runs if r.environment)
    machines.update(dict.fromkeys(machine_line(p.data["meta"]["environment"]) for p in profiles
                                  if p.data["meta"].get("environment")))
    links = "\n".join(f"- [{title}]({name})" for title, name in files.items())
    parts = [
        "# facebench report\n",
        (f"Made by `{report_environment.get('command')}` at {report_environment.get('time_utc')} "
         f"with facebench {report_environment.get('facebench_version')} "
         f"({report_environment.get('git_commit') or 'not a git checkout'}) on {machine_line(report_environment)}.\n"),
        "## Files\n",
        links + "\n",
        "## Beyond chance? (Table 1's paired tests against Vanilla)\n",
        ("\n".join(f"- {line}" for line in findings) if findings else "No KD cell with a Vanilla cell.") + "\n",
        "## Machines the numbers were measured on\n",
        "\n".join(f"- {m}" for m in machines) + "\n",
        bench_section(bench),
        "## Runs\n",
        (text_table(run_table(runs)) if runs else "none") + "\n",
        "## Profiles\n",
        (text_table(profile_table(profiles)) if profiles else "none") + "\n",
    ]
    if notes:
        parts += ["## Notes\n", "\n".join(f"- {n}" for n in notes) + "\n"]
    return "\n".join(p for p in parts if p)
