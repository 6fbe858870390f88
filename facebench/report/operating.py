"""Operating-point columns for the reports: FNMR at fixed FMR with its identity-bootstrap interval, rank-1 and
FNIR at FPIR, read from the all-pairs rows of a verify.json (``verify --folders``); nothing is recomputed.

The compression table and Table 1 take these columns wherever a run has a folder set, one line per all-pairs
row (the clean set and each degraded probe).
"""

from __future__ import annotations

import math
from dataclasses import asdict
from pathlib import Path
from typing import Any

from facebench.eval.operating_points import rate_key
from facebench.eval.paired_points import PAIRED_FMRS, PairedPoint, load_pair_scores, pair_scores_name, paired_points

ALL_PAIRS = "all-pairs"
REPORTED_FMRS = tuple(rate_key(f) for f in PAIRED_FMRS)  # what the tables show (verify.json: 1e-2..1e-6)
CAPTION = (
    "Operating points: every pair of distinct images of the folder set (genuine = same identity); FNMR at the "
    "cosine threshold where the impostor scores give that FMR, in %, with its 95 % interval from a bootstrap "
    "over identities (threshold and FNMR recomputed per replicate); n/a where the set has fewer than 1/FMR "
    "impostor pairs. rank-1: closed-set identification, one enrolled image per identity with 2+ images, the "
    "others searched; FNIR at FPIR=1e-2: open-set, single-image identities as the non-mated searches. "
    "A set named NAME@RECIPE had each probe degraded by RECIPE."
)


def all_pairs_rows(verify: dict[str, Any] | None) -> list[dict[str, Any]]:
    """The all-pairs rows of a verify.json, in file order (none for a pairs-only verification)."""
    if verify is None:
        return []
    return [row for row in verify["rows"] if row.get("protocol") == ALL_PAIRS]


def _pct(value: Any) -> float:
    return math.nan if value is None else 100 * float(value)


def fnmr_cell(row: dict[str, Any], fmr: str) -> str:
    """'2.31 [1.90, 2.80]' (percent), or 'n/a' where the set cannot resolve that FMR."""
    value = _pct(row.get(f"fnmr_fmr_{fmr}"))
    if math.isnan(value):
        return "n/a"
    lo, hi = _pct(row.get(f"fnmr_fmr_{fmr}_lo")), _pct(row.get(f"fnmr_fmr_{fmr}_hi"))
    return f"{value:.2f}" + ("" if math.isnan(lo) else f" [{lo:.2f}, {hi:.2f}]")


def operating_record(row: dict[str, Any]) -> dict[str, Any]:
    """The CSV fields of one all-pairs row, in percent."""
    record: dict[str, Any] = {"set": row["set"], "degrade": row.get("degrade")}
    for fmr in REPORTED_FMRS:
        for suffix in ("", "_lo", "_hi"):
            record[f"fnmr_fmr_{fmr}{suffix}_pct"] = _pct(row.get(f"fnmr_fmr_{fmr}{suffix}"))
        record[f"threshold_fmr_{fmr}"] = row.get(f"threshold_fmr_{fmr}")
    record |= {"rank1_pct": _pct(row.get("rank1")), "fnir_fpir_1e-2_pct": _pct(row.get("fnir_fpir_1e-2")),
               "n_genuine": row.get("n_genuine"), "n_impostor": row.get("n_impostor")}  # fmt: skip
    return record


def operating_cells(row: dict[str, Any]) -> dict[str, str]:
    """The Markdown cells of one all-pairs row."""
    cells = {"set": row["set"]}
    for fmr in REPORTED_FMRS:
        cells[f"FNMR@FMR={fmr} % [95% CI]"] = fnmr_cell(row, fmr)
    rank1, fnir = _pct(row.get("rank1")), _pct(row.get("fnir_fpir_1e-2"))
    cells["rank-1 %"] = "n/a" if math.isnan(rank1) else f"{rank1:.2f}"
    cells["FNIR@FPIR=1e-2 %"] = "n/a" if math.isnan(fnir) else f"{fnir:.2f}"
    return cells


def operating_entries(records: list[dict[str, Any]], model_field: str) -> list[dict[str, Any]]:
    """results.json's ``operating_points`` (what ``facebench check`` compares): model, set, FMR and FNMR in %
    (null where the set cannot resolve that FMR), from ``operating_record`` rows named by ``model_field``."""
    entries = []
    for record in records:
        for fmr in REPORTED_FMRS:
            value = record[f"fnmr_fmr_{fmr}_pct"]
            entries.append({"model": record[model_field], "set": record["set"], "fmr": fmr,
                            "fnmr_pct": None if math.isnan(value) else value})  # fmt: skip
    return entries


def paired_against(reference: Path, other: Path, set_name: str) -> list[PairedPoint]:
    """The run in folder ``other`` against the one in ``reference`` on one all-pairs set at the reported FMRs,
    from their saved scores; none when either folder lacks them (a verification older than the comparison)."""
    paths = [folder / pair_scores_name(set_name) for folder in (reference, other)]
    if not all(path.is_file() for path in paths):
        return []
    first, second = (load_pair_scores(path) for path in paths)
    return paired_points(first, second, where=f"{other} against {reference} on {set_name}")


def paired_fields(points: list[PairedPoint], prefix: str = "") -> dict[str, Any]:
    """The CSV fields of paired points: every PairedPoint field per FMR."""
    return {f"{prefix}{key}_fmr_{point.fmr}": value for point in points
            for key, value in asdict(point).items() if key != "fmr"}  # fmt: skip


def paired_cell(point: PairedPoint | None, at: str) -> str:
    """'+0.42 [+0.10, +0.80]': a paired difference (``at``: "own" or "reference" threshold) with its interval;
    '-' without a comparison, 'n/a' where the set cannot resolve the FMR."""
    if point is None:
        return "-"
    which = "own_threshold" if at == "own" else "reference_threshold"
    diff, lo, hi = (getattr(point, f"{kind}_at_{which}_pp") for kind in ("diff", "low", "high"))
    if math.isnan(diff):
        return "n/a"
    return f"{diff:+.2f}" + ("" if math.isnan(lo) else f" [{lo:+.2f}, {hi:+.2f}]")


def point_at(points: list[PairedPoint], fmr: str) -> PairedPoint | None:
    """The paired point at ``fmr`` ("1e-4"), if any."""
    return next((p for p in points if p.fmr == fmr), None)
