"""Operating-point columns for the reports: FNMR at fixed FMR with its identity-bootstrap interval, rank-1 and
FNIR at FPIR, read from the all-pairs rows of a verify.json (``verify --folders``); nothing is recomputed.

The compression table and Table 1 take these columns wherever a run has a folder set, one line per all-pairs
row (the clean set and each degraded probe).
"""

from __future__ import annotations

import math
from typing import Any

ALL_PAIRS = "all-pairs"
REPORTED_FMRS = ("1e-4", "1e-5")  # the FMRs the report tables show (verify.json holds 1e-2..1e-6)
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
