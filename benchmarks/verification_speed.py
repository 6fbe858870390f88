"""Speed of the verification metrics against insightface's loop over thresholds, same run.

Compares, on synthetic squared-L2 distances of 6,000 pairs (LFW size) and 600,000 pairs:
  reference   the plain loop re-implementation used by the tests (400 thresholds x 10 folds),
  protocol    facebench.eval.verification.fold_accuracies (same output as the reference),
  all         facebench.eval.verification.evaluate_distances (accuracy + ROC, TAR@FAR, EER, AUC).
Checks the accuracies agree, prints median times and speed-up ratios. Target: >= 50x at 6,000.

    /work/venv/bin/python benchmarks/verification_speed.py
"""

from __future__ import annotations

import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests" / "eval"))
from insightface_reference import reference_fold_accuracies  # noqa: E402

from facebench.eval.verification import evaluate_distances, fold_accuracies, kfold_ids  # noqa: E402


def median_seconds(fn: Callable[[], object], repeats: int) -> float:
    """Median wall time of ``repeats`` calls after one warm-up."""
    fn()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def synthetic(n_pairs: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Squared-L2 distances in [0, 4]: matched pairs nearer than mismatched ones."""
    rng = np.random.default_rng(seed)
    issame = np.arange(n_pairs) % 2 == 0
    distance = np.clip(np.where(issame, rng.normal(0.9, 0.3, n_pairs), rng.normal(1.7, 0.3, n_pairs)), 0, 4)
    return distance, issame


def main() -> None:
    print(f"{'pairs':>8} {'reference_ms':>13} {'protocol_ms':>12} {'all_ms':>9} {'protocol_x':>11} {'all_x':>8}")
    for n_pairs, ref_repeats, repeats in ((6_000, 5, 50), (600_000, 1, 5)):
        distance, issame = synthetic(n_pairs)
        folds = kfold_ids(n_pairs)
        ref_acc, _ = reference_fold_accuracies(distance, issame)
        acc, _ = fold_accuracies(distance, issame, folds)
        assert np.array_equal(acc, ref_acc), "vectorised accuracies differ from the reference"
        ref_s = median_seconds(lambda: reference_fold_accuracies(distance, issame), ref_repeats)
        protocol_s = median_seconds(lambda: fold_accuracies(distance, issame, folds), repeats)
        all_s = median_seconds(lambda: evaluate_distances(distance, issame), repeats)
        print(
            f"{n_pairs:>8} {ref_s * 1e3:>13.1f} {protocol_s * 1e3:>12.2f} {all_s * 1e3:>9.2f}"
            f" {ref_s / protocol_s:>10.0f}x {ref_s / all_s:>7.0f}x"
        )


if __name__ == "__main__":
    main()
