"""A deliberately plain re-implementation of insightface's 10-fold verification accuracy
(arcface_torch eval/verification.py: calculate_roc + calculate_accuracy), one Python loop
per threshold, used as the independent reference for tests and benchmarks/verification_speed.py.
"""

from __future__ import annotations

import numpy as np
from sklearn.model_selection import KFold


def accuracy_at(threshold: float, dist: np.ndarray, issame: np.ndarray) -> float:
    """Fraction of pairs classified right when 'same' means dist < threshold."""
    predict_same = dist < threshold
    tp = np.sum(predict_same & issame)
    tn = np.sum(~predict_same & ~issame)
    return float(tp + tn) / dist.size


def reference_fold_accuracies(
    dist: np.ndarray, issame: np.ndarray, folds: np.ndarray | None = None, n_folds: int = 10
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold test accuracy and chosen threshold, insightface style."""
    thresholds = np.arange(0, 4, 0.01)
    indices = np.arange(len(dist))
    if folds is None:
        splits = list(KFold(n_splits=n_folds, shuffle=False).split(indices))
    else:
        splits = [(indices[folds != f], indices[folds == f]) for f in range(int(folds.max()) + 1)]
    accuracies, chosen = [], []
    for train, test in splits:
        train_acc = np.zeros(len(thresholds))
        for j, threshold in enumerate(thresholds):
            train_acc[j] = accuracy_at(threshold, dist[train], issame[train])
        best = np.argmax(train_acc)
        accuracies.append(accuracy_at(thresholds[best], dist[test], issame[test]))
        chosen.append(thresholds[best])
    return np.array(accuracies), np.array(chosen)
