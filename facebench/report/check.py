"""``facebench check``: today's results against a baseline, for CI.

Both sides are ``results.json`` documents as ``facebench report`` writes them (a baseline
is one kept aside). Accuracy entries are matched by (model, teacher, method, set) and fail
when they drop by more than ``acc_tol`` percentage points; latency entries are matched by
(model, device, dtype, batch, threads) and fail when the mean grows by more than
``latency_tol`` (relative). Operating-point entries (FNMR in % at an FMR of an all-pairs set, where both
sides have them) are matched by (model, set, fmr) and fail when FNMR grows by more than ``fnmr_tol`` pp; an
FMR the set could not resolve (n/a) is not compared. A baseline entry with no counterpart fails as missing, except
latency measured only under other settings (another machine, say): that is reported as not
compared, since times from different hardware say nothing about a regression.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError
from facebench.fileio import read_json

ACCURACY_KEY = ("model", "teacher", "method", "set")
LATENCY_KEY = ("model", "device", "dtype", "batch", "threads")
OPERATING_KEY = ("model", "set", "fmr")
REGRESSION, MISSING, OK, NOT_COMPARED = "regression", "missing", "ok", "not compared"


@dataclass(frozen=True)
class Finding:
    """One baseline entry compared."""

    kind: str  # "accuracy", "latency" or "fnmr"
    key: tuple  # the values of ACCURACY_KEY, LATENCY_KEY or OPERATING_KEY
    baseline: float
    current: float | None
    change: str  # "-0.62 pp", "+31.0 %"
    status: str  # REGRESSION, MISSING, OK or NOT_COMPARED

    @property
    def failed(self) -> bool:
        return self.status in (REGRESSION, MISSING)


def load_results(path: Path) -> dict[str, Any]:
    """A results.json / baseline.json, checked for the fields check compares."""
    data = read_json(path)
    for kind, keys, value in (("accuracy", ACCURACY_KEY, "accuracy_pct"), ("latency", LATENCY_KEY, "latency_ms_mean")):
        entries = data.get(kind)
        if not isinstance(entries, list):
            raise FacebenchError(f"{path}: no '{kind}' list; write results with facebench report")
        for k, entry in enumerate(entries):
            missing = [f for f in (*keys, value) if not isinstance(entry, dict) or f not in entry]
            if missing:
                raise FacebenchError(f"{path}: {kind}[{k}] lacks {', '.join(missing)}; write results with facebench report")
    return data


def current_results(folder: Path, option: str = "--current") -> dict[str, Any]:
    """``folder/results.json`` when there is one, else the results of the run folders under ``folder``
    (``option`` names the setting that gave ``folder`` in errors)."""
    if not folder.is_dir():
        raise FacebenchError(f"{option} {folder}: no such folder; give the folder facebench report wrote or a runs "
                             "folder")
    path = folder / "results.json"
    if path.is_file():
        return load_results(path)
    from facebench.provenance import environment
    from facebench.report.build import results
    from facebench.report.runs import discover
    from facebench.report.study import study_rows

    found = discover(folder)
    if not found.runs:
        raise FacebenchError(f"{option} {folder}: neither a results.json nor run folders (config.json + verify.json)")
    return results(study_rows(found.runs), found, folder, environment())


def _key(entry: dict[str, Any], fields: tuple[str, ...]) -> tuple:
    return tuple(entry[f] for f in fields)


def compare(baseline: dict[str, Any], current: dict[str, Any], acc_tol: float, latency_tol: float,
            fnmr_tol: float = 1.0) -> list[Finding]:
    """Every baseline entry against its current counterpart (tolerances: pp, relative growth, pp)."""
    findings = []
    now = {_key(e, ACCURACY_KEY): e for e in current["accuracy"]}
    for entry in baseline["accuracy"]:
        key = _key(entry, ACCURACY_KEY)
        base = float(entry["accuracy_pct"])
        if key not in now:
            findings.append(Finding("accuracy", key, base, None, "-", MISSING))
            continue
        value = float(now[key]["accuracy_pct"])
        status = REGRESSION if base - value > acc_tol else OK
        findings.append(Finding("accuracy", key, base, value, f"{value - base:+.2f} pp", status))
    now = {_key(e, LATENCY_KEY): e for e in current["latency"]}
    models_now = {e["model"] for e in current["latency"]}
    for entry in baseline["latency"]:
        key = _key(entry, LATENCY_KEY)
        base = float(entry["latency_ms_mean"])
        if key not in now:
            status = NOT_COMPARED if entry["model"] in models_now else MISSING
            findings.append(Finding("latency", key, base, None, "-", status))
            continue
        value = float(now[key]["latency_ms_mean"])
        growth = value / base - 1.0
        status = REGRESSION if growth > latency_tol else OK
        findings.append(Finding("latency", key, base, value, f"{100 * growth:+.1f} %", status))
    operating = (baseline.get("operating_points", []), current.get("operating_points", []))
    return findings + _compare_fnmr(*operating, fnmr_tol)


def _rate(value: float | None) -> float:
    return math.nan if value is None else float(value)


def _compare_fnmr(baseline: list[dict[str, Any]], current: list[dict[str, Any]], fnmr_tol: float) -> list[Finding]:
    """FNMR entries (percent) of all-pairs sets; a baseline's null (an FMR the set cannot resolve) is not
    compared, a current null where the baseline has a value is missing."""
    findings = []
    now = {_key(e, OPERATING_KEY): e for e in current}
    for entry in baseline:
        key, base = _key(entry, OPERATING_KEY), _rate(entry["fnmr_pct"])
        if math.isnan(base):
            continue
        value = _rate(now[key]["fnmr_pct"]) if key in now else math.nan
        if math.isnan(value):
            findings.append(Finding("fnmr", key, base, None, "-", MISSING))
            continue
        status = REGRESSION if value - base > fnmr_tol else OK
        findings.append(Finding("fnmr", key, base, value, f"{value - base:+.2f} pp", status))
    return findings
