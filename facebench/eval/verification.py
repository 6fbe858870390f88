"""Pair-verification metrics: the insightface 10-fold accuracy protocol, thresholds, FAR/FRR,
TAR@FAR, EER and ROC AUC, as pure vectorised functions of distances, labels and folds.

The accuracy protocol reproduces insightface ``recognition/arcface_torch/eval/verification.py``
(``calculate_roc`` / ``calculate_accuracy``) exactly:

* distance = squared L2 between L2-normalised embeddings (0..4); a pair is predicted
  "same" when ``distance < threshold`` (strict);
* thresholds ``np.arange(0, 4, 0.01)`` (400 values);
* for each fold, the threshold with the best accuracy on the *other* folds (``np.argmax``:
  the lowest threshold on ties) is applied to the fold; accuracy = correct / fold size;
* reported accuracy = unweighted mean of the per-fold accuracies, std = ``np.std``
  (ddof=0).

Instead of insightface's loop over 400 thresholds per fold, each pair is binned once with
``searchsorted`` and the per-fold confusion counts for every threshold come from one
``bincount`` + ``cumsum``; the integer counts, and so every accuracy, are identical.

ROC-type metrics (TAR@FAR, EER, AUC, FAR/FRR at the chosen threshold) are computed over
all pairs pooled, accepting a pair when its distance is at or below an ROC operating point
(the convention of ``sklearn.metrics.roc_curve`` on the similarity ``-distance``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facebench.errors import FacebenchError
from facebench.vectors import l2_normalize

THRESHOLDS_SQ_L2 = np.arange(0, 4, 0.01)  # insightface calculate_roc grid, squared-L2 units
DEFAULT_N_FOLDS = 10  # LFW View 2 and insightface's nfolds default
FAR_TARGETS = (1e-1, 1e-2, 1e-3, 1e-4)


@dataclass(frozen=True)
class VerificationResult:
    """Every verification number for one pairs set; ``None`` where the pairs can't resolve it."""

    n_pairs: int
    n_matched: int
    n_mismatched: int
    n_folds: int
    folds_from: str  # "file" (the pairs file's own folds) or "kfold" (contiguous, sklearn KFold sizes)
    accuracy: float  # mean of per-fold accuracies, fraction
    accuracy_std: float  # np.std of per-fold accuracies (ddof=0)
    fold_accuracy: list[float]
    fold_threshold_sq_l2: list[float]
    threshold_sq_l2: float  # mean of the per-fold chosen thresholds
    threshold_cosine: float  # the same threshold as cosine similarity: 1 - d / 2
    far: float  # false acceptance rate at threshold_sq_l2, pooled over all pairs
    frr: float  # false rejection rate at threshold_sq_l2
    eer: float
    roc_auc: float
    tar_at_far: dict[str, float | None]  # keys "1e-01".."1e-04"

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def far_key(far: float) -> str:
    """Stable key for a FAR target: 1e-3 -> '1e-03'."""
    return f"{far:.0e}"


def squared_l2_distances(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Squared L2 distance (0..4) between the L2-normalised rows of two (P, D) embedding arrays."""
    if left.shape != right.shape or left.ndim != 2:
        raise ValueError(f"embedding arrays must both be (P, D); got {left.shape} and {right.shape}")
    return np.sum(np.square(l2_normalize(left) - l2_normalize(right)), axis=1)


def cosine_from_sq_l2(distance: np.ndarray | float) -> np.ndarray | float:
    """Cosine similarity of unit vectors from their squared L2 distance: cos = 1 - d / 2."""
    return 1.0 - distance / 2.0


def kfold_ids(n_pairs: int, n_folds: int = DEFAULT_N_FOLDS) -> np.ndarray:
    """Fold id per pair for contiguous, unshuffled k-fold, sized like sklearn ``KFold``.

    The first ``n_pairs % n_folds`` folds hold one pair more than the rest, as in
    ``KFold(n_splits=n_folds, shuffle=False)``, which insightface uses.
    """
    if n_pairs < n_folds:
        raise FacebenchError(f"{n_pairs} pairs cannot make {n_folds} folds; the protocol needs at least {n_folds}")
    sizes = np.full(n_folds, n_pairs // n_folds, dtype=np.int64)
    sizes[: n_pairs % n_folds] += 1
    return np.repeat(np.arange(n_folds, dtype=np.int64), sizes)


def check_folds(folds: np.ndarray) -> int:
    """Validate fold ids given by a pairs file; return the number of folds.

    Ids must be 0..k-1 with k >= 2, each fold non-empty and all folds of equal size: the
    protocol reports the unweighted mean of per-fold accuracies, which is the standard number
    only when folds are equal (LFW: 10 x 600).
    """
    folds = np.asarray(folds)
    if folds.ndim != 1 or not np.issubdtype(folds.dtype, np.integer):
        raise FacebenchError(f"fold ids must be a 1-D integer array, got {folds.dtype} with shape {folds.shape}")
    if folds.size and folds.min() < 0:
        raise FacebenchError(f"fold ids must be 0..k-1, found {folds.min()}")
    sizes = np.bincount(folds)
    if len(sizes) < 2:
        raise FacebenchError("the pairs have a single fold; the protocol needs at least 2 (LFW: 10)")
    if (sizes == 0).any():
        raise FacebenchError(f"fold ids must be 0..{len(sizes) - 1} with none empty; fold {int(np.argmin(sizes))} is empty")
    if (sizes != sizes[0]).any():
        raise FacebenchError(
            f"folds of unequal size ({', '.join(map(str, sizes))} pairs): the 10-fold protocol averages "
            "per-fold accuracies and needs equal folds; fix the fold column or drop it to use contiguous 10-fold"
        )
    return len(sizes)


def check_fold_kinds(folds: np.ndarray, issame: np.ndarray) -> None:
    """Refuse a fold without both matched and mismatched pairs: its threshold, picked on the other folds, would
    be scored on one kind only, and a set ordered that way (all matched pairs first) reports a wrong accuracy."""
    issame = np.asarray(issame, dtype=bool)
    for fold in range(int(folds.max()) + 1):
        in_fold = folds == fold
        n_matched = int(issame[in_fold].sum())
        if n_matched in (0, int(in_fold.sum())):
            raise FacebenchError(
                f"fold {fold} holds {n_matched} matched and {int(in_fold.sum()) - n_matched} mismatched pairs; "
                "every fold needs both: order the pairs as LFW does (per fold, n matched then n mismatched) "
                "or give each pair its fold"
            )


def fold_accuracies(
    distances: np.ndarray,
    issame: np.ndarray,
    folds: np.ndarray,
    thresholds: np.ndarray = THRESHOLDS_SQ_L2,
) -> tuple[np.ndarray, np.ndarray]:
    """Per-fold test accuracy and chosen threshold, each threshold picked on the other folds.

    Equals insightface ``calculate_roc``'s ``accuracy`` array for the same folds; folds may be
    of any size (each accuracy is over its own fold).
    """
    issame = np.asarray(issame, dtype=bool)
    n_folds = int(folds.max()) + 1
    n_thresholds = len(thresholds)
    # Pair i counts as "same" at threshold j exactly when distances[i] < thresholds[j], i.e.
    # for j >= first_accepting[i].
    first_accepting = np.searchsorted(thresholds, distances, side="right")
    cell = (folds * 2 + issame) * (n_thresholds + 1) + first_accepting
    counts = np.bincount(cell, minlength=n_folds * 2 * (n_thresholds + 1)).reshape(n_folds, 2, n_thresholds + 1)
    accepted = np.cumsum(counts, axis=2)[:, :, :n_thresholds]  # (fold, issame, threshold)
    n_mismatched = counts[:, 0, :].sum(axis=1)
    n_test = counts.sum(axis=(1, 2))
    correct_test = accepted[:, 1, :] + (n_mismatched[:, None] - accepted[:, 0, :])  # tp + tn
    correct_train = correct_test.sum(axis=0)[None, :] - correct_test
    n_train = n_test.sum() - n_test
    best = np.argmax(correct_train / n_train[:, None], axis=1)
    test_accuracy = correct_test[np.arange(n_folds), best] / n_test
    return test_accuracy, thresholds[best]


def roc_curve(distances: np.ndarray, issame: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """ROC operating points (FAR, TAR, distance cut), accepting pairs with distance <= cut.

    One point per distinct distance, starting at (0, 0) with cut -inf; the same points as
    ``sklearn.metrics.roc_curve(issame, -distances, drop_intermediate=False)``.
    """
    issame = np.asarray(issame, dtype=bool)
    n_matched = int(issame.sum())
    n_mismatched = issame.size - n_matched
    if n_matched == 0 or n_mismatched == 0:
        raise FacebenchError(
            f"the pairs hold {n_matched} matched and {n_mismatched} mismatched pairs; verification needs both"
        )
    order = np.argsort(distances, kind="stable")
    sorted_distances = distances[order]
    sorted_same = issame[order]
    last_of_value = np.r_[np.flatnonzero(np.diff(sorted_distances)), sorted_distances.size - 1]
    tar = np.r_[0.0, np.cumsum(sorted_same)[last_of_value] / n_matched]
    far = np.r_[0.0, np.cumsum(~sorted_same)[last_of_value] / n_mismatched]
    return far, tar, np.r_[-np.inf, sorted_distances[last_of_value]]


def tar_at_far(far: np.ndarray, tar: np.ndarray, target: float, n_mismatched: int) -> float | None:
    """TAR at a FAR target, linearly interpolated on the ROC; None when fewer than 1/target mismatched
    pairs make that FAR unresolvable (3000 negatives can't resolve 1e-4).

    Where the ROC is vertical at the target FAR, the highest TAR there is taken.
    """
    if n_mismatched * target < 1 - 1e-9:
        return None
    keep = np.r_[far[1:] != far[:-1], True]  # last (highest-TAR) point of each FAR value
    return float(np.interp(target, far[keep], tar[keep]))


def equal_error_rate(far: np.ndarray, tar: np.ndarray) -> float:
    """Rate where FAR equals FRR (= 1 - TAR), interpolating linearly between ROC points."""
    frr = 1.0 - tar
    i = int(np.argmax(frr <= far))  # first point at or past the crossing; point 0 is (0, 0), frr 1
    a0, a1, b0, b1 = far[i - 1], far[i], frr[i - 1], frr[i]
    t = (b0 - a0) / ((a1 - a0) - (b1 - b0))
    return float(a0 + t * (a1 - a0))


def evaluate_distances(
    distances: np.ndarray,
    issame: np.ndarray,
    folds: np.ndarray | None = None,
    n_folds: int = DEFAULT_N_FOLDS,
) -> VerificationResult:
    """All verification metrics from squared-L2 distances of normalised embeddings.

    ``folds``: the pairs file's fold ids (must be equal-sized, see ``check_folds``), or None
    for contiguous ``n_folds``-fold in pair order, sized like sklearn ``KFold`` (the first
    ``P % n_folds`` folds one pair larger, each fold's accuracy over its own size, then the
    unweighted mean), exactly as insightface does.
    """
    distances = np.asarray(distances, dtype=np.float64)
    issame = np.asarray(issame, dtype=bool)
    if distances.ndim != 1 or distances.shape != issame.shape:
        raise ValueError(f"distances {distances.shape} and issame {issame.shape} must be equal 1-D arrays")
    if distances.size == 0:
        raise FacebenchError("no pairs to verify")
    if not np.isfinite(distances).all():
        raise FacebenchError("the embeddings contain NaN or infinite values; the model output is broken")
    if folds is None:
        folds_from, fold_ids = "kfold", kfold_ids(distances.size, n_folds)
    else:
        fold_ids = np.asarray(folds)
        if fold_ids.shape != distances.shape:
            raise ValueError(f"folds {fold_ids.shape} must match distances {distances.shape}")
        folds_from = "file"
        check_folds(fold_ids)
    far, tar, _ = roc_curve(distances, issame)
    accuracy, thresholds = fold_accuracies(distances, issame, fold_ids)
    threshold = float(np.mean(thresholds))
    n_matched = int(issame.sum())
    n_mismatched = issame.size - n_matched
    return VerificationResult(
        n_pairs=int(distances.size),
        n_matched=n_matched,
        n_mismatched=n_mismatched,
        n_folds=len(accuracy),
        folds_from=folds_from,
        accuracy=float(np.mean(accuracy)),
        accuracy_std=float(np.std(accuracy)),
        fold_accuracy=[float(a) for a in accuracy],
        fold_threshold_sq_l2=[float(t) for t in thresholds],
        threshold_sq_l2=threshold,
        threshold_cosine=cosine_from_sq_l2(threshold),
        far=float(np.mean(distances[~issame] < threshold)),
        frr=float(np.mean(distances[issame] >= threshold)),
        eer=equal_error_rate(far, tar),
        roc_auc=float(np.trapezoid(tar, far)),
        tar_at_far={far_key(t): tar_at_far(far, tar, t, n_mismatched) for t in FAR_TARGETS},
    )


def evaluate_embeddings(
    left: np.ndarray,
    right: np.ndarray,
    issame: np.ndarray,
    folds: np.ndarray | None = None,
    n_folds: int = DEFAULT_N_FOLDS,
) -> VerificationResult:
    """All verification metrics from the two (P, D) embedding arrays of the pairs."""
    return evaluate_distances(squared_l2_distances(left, right), issame, folds, n_folds)
