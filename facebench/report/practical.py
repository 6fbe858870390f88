"""The study's Table 2 (practical metrics) from profile.json files, as ``facebench profile`` writes them.

Counts (params, size, GMACs, GFLOPs) and latency/memory are read, never recomputed: they
come from ``facebench.profiling`` through the profile step. A row keeps the runtime, device,
dtype, batch and thread count it was measured with, and the file it came from (profile
files written before runtimes were recorded are torch's).
"""

from __future__ import annotations

import math
from typing import Any

from facebench.report.runs import ProfileFile

NUMBER_COLUMNS = ("params_m", "size_mb", "gmacs", "gflops", "latency_ms_mean", "latency_ms_std",
                  "latency_ms_p50", "latency_ms_p95", "throughput_ips")
SETTING_COLUMNS = ("runtime", "device", "dtype", "batch", "threads", "channels_last")


def memory_columns(profiles: list[ProfileFile]) -> list[str]:
    """Every ``mem_*_mb`` column found, in order of first appearance."""
    names: dict[str, None] = {}
    for profile in profiles:
        for row in profile.rows:
            names.update(dict.fromkeys(k for k in row if k.startswith("mem_") and k.endswith("_mb")))
    return list(names)


def profile_rows(profiles: list[ProfileFile], models: list[str]) -> list[tuple[dict[str, Any], ProfileFile]]:
    """Every profile row with its file: models of the runs first (in ``models`` order), then the others."""
    pairs = [(row, profile) for profile in profiles for row in profile.rows]
    order = {name: k for k, name in enumerate(models)}
    return sorted(pairs, key=lambda pair: order.get(pair[0]["model"], len(order)))


def _num(value: Any) -> float:
    return float("nan") if value is None else float(value)


def _fmt(value: float, digits: int) -> str:
    return "n/a" if math.isnan(value) else f"{value:.{digits}f}"


def table2(profiles: list[ProfileFile], models: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(CSV rows with units in the names and the source file, Markdown rows with labelled headers)."""
    memory = memory_columns(profiles)
    csv_rows, md_rows = [], []
    for row, profile in profile_rows(profiles, models):
        record: dict[str, Any] = {"model": row["model"]}
        record.update({k: _num(row.get(k)) for k in NUMBER_COLUMNS})
        record.update({k: row.get(k) for k in SETTING_COLUMNS} | {"runtime": row.get("runtime", "torch")})
        record.update({k: _num(row.get(k)) for k in memory})
        record["source"] = str(profile.path)
        csv_rows.append(record)
        md_rows.append({
            "model": row["model"],
            "runtime": record["runtime"],
            "params (M)": _fmt(record["params_m"], 2),
            "size (MB)": _fmt(record["size_mb"], 1),
            "GMACs": _fmt(record["gmacs"], 3),
            "GFLOPs": _fmt(record["gflops"], 3),
            "latency ms (mean ± std)": f"{_fmt(record['latency_ms_mean'], 2)} ± {_fmt(record['latency_ms_std'], 2)}",
            "p50 ms": _fmt(record["latency_ms_p50"], 2),
            "p95 ms": _fmt(record["latency_ms_p95"], 2),
            "device": row["device"],
            "dtype": row["dtype"],
            "batch": row["batch"],
            "threads": row.get("threads", "n/a"),
            **{f"{k.removeprefix('mem_').removesuffix('_mb')} (MB)": _fmt(record[k], 1) for k in memory},
            "source": str(profile.path),
        })  # fmt: skip
    return csv_rows, md_rows


def gflops_by_model(profiles: list[ProfileFile]) -> dict[str, float]:
    """GFLOPs per model (a static count at batch 1: the same in every profile row of a model).

    External models (dlib) have no count (None): they are left out.
    """
    found: dict[str, float] = {}
    for profile in profiles:
        for row in profile.rows:
            if row["gflops"] is not None:
                found.setdefault(row["model"], float(row["gflops"]))
    return found


def latency_entries(profiles: list[ProfileFile]) -> list[dict[str, Any]]:
    """One entry per profile row: what ``facebench check`` compares for latency."""
    return [
        {
            "model": row["model"], "device": row["device"], "dtype": row["dtype"], "batch": row["batch"],
            "threads": row.get("threads"), "latency_ms_mean": float(row["latency_ms_mean"]),
            "latency_ms_std": float(row["latency_ms_std"]), "source": str(profile.path),
        }
        for profile in profiles
        for row in profile.rows
    ]  # fmt: skip
