"""Paired comparison of two runs at one operating point: the same images scored by a reference (the fp32
original) and another run (its int8 variant), FNMR difference with an identity-bootstrap interval.

Two differences per FMR, each with the 95 % percentile interval of one bootstrap over identities that both
runs share (the same draws for both, so what the images have in common cancels, as Table 1's paired
bootstrap over pairs does for accuracy):

- **at the reference's threshold**: the threshold a deployment calibrated on the reference keeps, the other
  run's FNMR there minus the reference's; the other run's FMR at that threshold is reported beside it;
- **at each run's own threshold**: each run's FNMR at the threshold its own impostors give for that FMR.

Each replicate recomputes the thresholds from the weighted impostors (operating_points.BOOTSTRAP_RULE).
The inputs are each run's ``pairs_<set>.npz`` (``save_pair_scores``): every genuine score and the highest
impostor scores, enough for FMR <= ``SAVED_MAX_FMR``.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.errors import FacebenchError
from facebench.eval.operating_points import (
    KEPT_MARGIN,
    PairScores,
    allowed_count,
    exact_threshold,
    rate_key,
    replicate_operating_points,
    weighted_fnmr,
)
from facebench.fileio import atomic_path

SAVED_MAX_FMR = 1e-4  # the kept impostors saved beside a verification resolve FMR 1e-4 and below
PAIRED_FMRS = (1e-4, 1e-5)
PAIRED_RULE = (
    "Paired over identities: one bootstrap over the identities both runs share (the same draws for both); "
    "per replicate the thresholds are recomputed from each run's weighted impostors; the difference is the "
    "other run's FNMR minus the reference's, in percentage points, at the reference's threshold and at each "
    "run's own; 95 % percentile interval."
)


def pair_scores_name(set_name: str) -> str:
    """The file of a folder set's saved scores in a verify folder: ``pairs_<set>.npz``, with any character
    outside letters, digits and ``.@+-`` (a recipe's ``:``) as ``_`` so the name is valid on every filesystem."""
    return "pairs_" + re.sub(r"[^\w.@+-]", "_", set_name) + ".npz"


def save_pair_scores(path: Path, scores: PairScores, max_fmr: float = SAVED_MAX_FMR) -> None:
    """Every genuine score and the top ``KEPT_MARGIN x max_fmr x n_impostor`` impostors, atomically."""
    keep = min(scores.impostor.size, int(np.ceil(KEPT_MARGIN * max_fmr * scores.n_impostor)) + 1)
    with atomic_path(path) as tmp, tmp.open("wb") as handle:
        np.savez_compressed(
            handle, identity=scores.identity, sizes=scores.sizes, genuine=scores.genuine,
            genuine_identity=scores.genuine_identity, impostor=scores.impostor[:keep],
            impostor_pairs=scores.impostor_pairs[:keep], n_impostor=np.int64(scores.n_impostor),
        )  # fmt: skip


def load_pair_scores(path: Path) -> PairScores:
    """A ``save_pair_scores`` file; a missing or broken one -> FacebenchError naming it."""
    try:
        with np.load(path) as data:
            impostor = data["impostor"]
            return PairScores(
                identity=data["identity"], sizes=data["sizes"], genuine=data["genuine"],
                genuine_identity=data["genuine_identity"], impostor=impostor,
                impostor_pairs=data["impostor_pairs"], cutoff=float(impostor[-1]) if impostor.size else -2.0,
                histogram=np.zeros(0, dtype=np.int64), n_impostor=int(data["n_impostor"]),
            )  # fmt: skip
    except FileNotFoundError:
        raise FacebenchError(f"{path}: not found; verify the run again with this facebench (verify --folders "
                             "writes it)") from None
    except (OSError, KeyError, ValueError) as exc:
        raise FacebenchError(f"{path}: not a facebench pairs-scores file ({exc}); verify the run again") from None


@dataclass(frozen=True)
class PairedPoint:
    """The other run against the reference at one FMR (percent and percentage points)."""

    fmr: str
    reference_fnmr_pct: float
    fnmr_at_reference_threshold_pct: float
    fmr_at_reference_threshold: float  # the other run's impostors at the reference's threshold
    diff_at_reference_threshold_pp: float
    low_at_reference_threshold_pp: float
    high_at_reference_threshold_pp: float
    fnmr_at_own_threshold_pct: float
    diff_at_own_threshold_pp: float
    low_at_own_threshold_pp: float
    high_at_own_threshold_pp: float


def _check_same_images(reference: PairScores, other: PairScores, where: str) -> None:
    if not (np.array_equal(reference.identity, other.identity) and reference.n_impostor == other.n_impostor):
        raise FacebenchError(f"{where}: the two runs scored different images; a paired comparison needs the same "
                             "folder set")


def _threshold(scores: PairScores, rate: float) -> float:
    allowed = allowed_count(rate, scores.n_impostor)
    if not 1 <= allowed < scores.impostor.size:
        return float("nan")
    return float(exact_threshold(scores.impostor, allowed))


def _impostor_rate(scores: PairScores, threshold: float) -> float:
    """FMR of ``scores`` at ``threshold`` (exact while the threshold lies within the kept impostors)."""
    if np.isnan(threshold) or threshold <= scores.impostor[-1]:
        return float("nan")
    return float(np.count_nonzero(scores.impostor >= threshold) / scores.n_impostor)


def paired_points(reference: PairScores, other: PairScores, *, fmrs: tuple[float, ...] = PAIRED_FMRS,
                  replicates: int = 1000, seed: int = 0, where: str = "paired comparison") -> list[PairedPoint]:
    """``other`` against ``reference`` at each FMR (module docstring); NaN where the set cannot resolve it."""
    _check_same_images(reference, other, where)
    n_id = reference.sizes.size
    rng = np.random.default_rng(seed)
    draws = rng.integers(0, n_id, size=(replicates, n_id), dtype=np.int32)
    counts = np.bincount((draws + n_id * np.arange(replicates)[:, None]).ravel(),
                         minlength=draws.size).reshape(draws.shape)  # fmt: skip
    ref_t, ref_fnmr, _ = replicate_operating_points(reference, counts, fmrs)
    _, own_fnmr, _ = replicate_operating_points(other, counts, fmrs)
    at_ref = weighted_fnmr(other, counts, ref_t)
    points = []
    for t, rate in enumerate(fmrs):
        threshold = _threshold(reference, rate)
        own = _threshold(other, rate)
        base = 100 * float(np.mean(reference.genuine < threshold)) if not np.isnan(threshold) else float("nan")
        at = 100 * float(np.mean(other.genuine < threshold)) if not np.isnan(threshold) else float("nan")
        mine = 100 * float(np.mean(other.genuine < own)) if not np.isnan(own) else float("nan")
        d_ref = 100 * (at_ref[:, t] - ref_fnmr[:, t])
        d_own = 100 * (own_fnmr[:, t] - ref_fnmr[:, t])
        ref_lo, ref_hi = _interval(d_ref)
        own_lo, own_hi = _interval(d_own)
        points.append(PairedPoint(rate_key(rate), base, at, _impostor_rate(other, threshold), at - base, ref_lo,
                                  ref_hi, mine, mine - base, own_lo, own_hi))  # fmt: skip
    return points


def _interval(values: np.ndarray) -> tuple[float, float]:
    """The 95 % percentile interval of a replicate column; NaN when any replicate could not be computed."""
    if values.size == 0 or np.isnan(values).any():
        return float("nan"), float("nan")
    lo, hi = np.percentile(values, (2.5, 97.5))
    return float(lo), float(hi)
