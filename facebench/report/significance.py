"""Paired significance of the difference between two runs' verification accuracies (Table 1).

Both tests work on per-pair correctness, on the very decisions behind verify.json's k-fold
accuracy: a run judges a pair "same" when its squared L2 distance d = 2 (1 - score)
(``score``: the cosine in scores.csv) is below the threshold verify chose for the pair's fold
on the other folds (verify.json ``meta.results[set].fold_threshold_sq_l2``), and is correct
when that matches ``issame``. The reader checks that these decisions reproduce the recorded
k-fold accuracy, so the fraction correct over all pairs is Table 1's accuracy (exactly, with
equal-sized folds).

- **Paired bootstrap**: resample pairs with replacement (the same resample for both runs),
  the difference of the fractions correct on each resample; 95 % percentile interval.
- **McNemar's exact test**: b = pairs only run A gets right, c = pairs only run B gets
  right; two-sided p = min(1, 2 P[X <= min(b, c)]), X ~ Binomial(b + c, 1/2).

With several seeds, seed k of a method is paired with seed k of Vanilla (both in ascending
seed order): the bootstrap resamples pairs of the per-pair correctness averaged over the
seeds (its mean is the difference of the seed-mean accuracies, and its interval holds the
pair sampling; the seeds' spread is reported beside it), and McNemar runs once per seed pair.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.errors import FacebenchError
from facebench.runfolder import SCORES, VERIFY

BOOTSTRAP_RESAMPLES = 2000
BOOTSTRAP_SEED = 0
LEVEL = 0.95


def paired_bootstrap(correct_a: np.ndarray, correct_b: np.ndarray, resamples: int = BOOTSTRAP_RESAMPLES,
                     seed: int = BOOTSTRAP_SEED, level: float = LEVEL) -> tuple[float, float, float]:
    """(accuracy of A minus accuracy of B, low, high of its ``level`` percentile interval), as fractions."""
    a = np.asarray(correct_a, dtype=np.float64)
    b = np.asarray(correct_b, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1 or a.size == 0:
        raise ValueError(f"correct_a {a.shape} and correct_b {b.shape} must be equal non-empty 1-D arrays")
    rng = np.random.default_rng(seed)
    diff = a - b
    draws = np.empty(resamples)
    for k in range(resamples):  # one resample at a time: memory stays O(pairs)
        draws[k] = diff[rng.integers(0, diff.size, diff.size)].mean()
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(draws, [tail, 100 - tail])
    return float(diff.mean()), float(low), float(high)


def binomial_cdf_half(k: int, n: int) -> float:
    """P[X <= k] for X ~ Binomial(n, 1/2), summed in log space (exact for any n)."""
    if n == 0:
        return 1.0
    logs = np.array([math.lgamma(n + 1) - math.lgamma(i + 1) - math.lgamma(n - i + 1) for i in range(k + 1)])
    logs -= n * math.log(2)
    top = logs.max()
    return float(min(1.0, math.exp(top) * np.exp(logs - top).sum()))


def mcnemar_exact(correct_a: np.ndarray, correct_b: np.ndarray) -> tuple[int, int, float]:
    """(b: pairs only A gets right, c: pairs only B gets right, two-sided exact p)."""
    a = np.asarray(correct_a, dtype=bool)
    other = np.asarray(correct_b, dtype=bool)
    if a.shape != other.shape or a.ndim != 1:
        raise ValueError(f"correct_a {a.shape} and correct_b {other.shape} must be equal 1-D arrays")
    b, c = int((a & ~other).sum()), int((~a & other).sum())
    return b, c, min(1.0, 2 * binomial_cdf_half(min(b, c), b + c))


@dataclass
class PairDecisions:
    """One run's per-pair outcome on one set, in pair order."""

    source: Path  # the scores.csv read
    pair: np.ndarray  # pair ids
    issame: np.ndarray  # bool
    correct: np.ndarray  # bool: the decision at the run's threshold matches issame

    def same_pairs(self, other: PairDecisions) -> bool:
        """Whether both hold the same pairs (ids and labels) in the same order."""
        return np.array_equal(self.pair, other.pair) and np.array_equal(self.issame, other.issame)


def read_decisions(run_path: Path, verify: dict[str, Any], set_name: str) -> PairDecisions:
    """A run's per-pair correctness on ``set_name`` from its scores.csv and verify.json (see the module
    docstring); FacebenchError saying what is missing or inconsistent."""
    path = run_path / SCORES
    thresholds = verify["meta"].get("results", {}).get(set_name, {}).get("fold_threshold_sq_l2")
    if not path.is_file() or thresholds is None:
        raise FacebenchError(f"no {SCORES} or no {set_name} fold_threshold_sq_l2 in {run_path / VERIFY}")
    scores = pd.read_csv(path)
    scores = scores[scores["set"] == set_name].sort_values("pair")
    fold = scores["fold"].to_numpy(np.int64)
    if scores.empty or fold.min() < 0 or fold.max() >= len(thresholds):
        raise FacebenchError(f"{path}: no {set_name} pairs, or folds that {run_path / VERIFY} has no threshold for")
    distance = 2.0 * (1.0 - scores["score"].to_numpy(np.float64))
    issame = scores["issame"].to_numpy().astype(bool)
    correct = (distance < np.asarray(thresholds, dtype=np.float64)[fold]) == issame
    recorded = next(row["accuracy"] for row in verify["rows"] if row["set"] == set_name)
    kfold = float(np.mean([correct[fold == k].mean() for k in np.unique(fold)]))
    if abs(kfold - recorded) > 1e-9:
        raise FacebenchError(f"{path} at the fold thresholds gives accuracy {kfold:.6f}, "
                             f"{run_path / VERIFY} records {recorded:.6f}")
    return PairDecisions(path, scores["pair"].to_numpy(np.int64), issame, correct)


def sample_std(values: np.ndarray) -> float:
    """Standard deviation with ddof=1 (the seeds' spread); NaN with fewer than two values."""
    values = np.asarray(values, dtype=np.float64)
    return float(values.std(ddof=1)) if values.size > 1 else math.nan


@dataclass
class SeedTest:
    """One seed pair's McNemar: its accuracy difference (percentage points), b, c and p."""

    diff_pp: float
    b: int
    c: int
    p: float


@dataclass
class Comparison:
    """A method against Vanilla on one set: the bootstrap difference (percentage points) over the seed pairs'
    mean and its interval, and McNemar per seed pair."""

    diff_pp: float
    low_pp: float
    high_pp: float
    seeds: list[SeedTest]

    @property
    def p(self) -> float:
        """The largest McNemar p over the seed pairs (the one pair's p with one seed)."""
        return max(seed.p for seed in self.seeds)

    @property
    def seed_std_pp(self) -> float:
        """Standard deviation (ddof=1) of the seed pairs' differences; NaN with one pair."""
        return sample_std(np.array([seed.diff_pp for seed in self.seeds]))

    @property
    def significant(self) -> bool:
        """Beyond chance: the interval excludes 0 and every seed pair's McNemar p < 0.05 with a difference of the
        same sign."""
        excludes_zero = self.low_pp > 0 or self.high_pp < 0
        agree = all(seed.p < 0.05 and np.sign(seed.diff_pp) == np.sign(self.diff_pp) for seed in self.seeds)
        return excludes_zero and agree


def compare(runs: list[PairDecisions], vanillas: list[PairDecisions]) -> Comparison:
    """Seed k of ``runs`` minus seed k of ``vanillas`` by both tests (the caller checks ``same_pairs`` first)."""
    if not runs or len(runs) != len(vanillas):
        raise ValueError(f"{len(runs)} runs and {len(vanillas)} Vanilla runs: compare needs equal non-zero counts")
    pooled = [np.mean([d.correct for d in group], axis=0) for group in (runs, vanillas)]
    diff, low, high = paired_bootstrap(*pooled)
    seeds = []
    for run, vanilla in zip(runs, vanillas, strict=True):
        b, c, p = mcnemar_exact(run.correct, vanilla.correct)
        seeds.append(SeedTest(100 * float(run.correct.mean() - vanilla.correct.mean()), b, c, p))
    return Comparison(100 * diff, 100 * low, 100 * high, seeds)
