"""Verification metrics against an independent plain insightface loop and sklearn's ROC."""

from __future__ import annotations

import numpy as np
import pytest
from insightface_reference import reference_fold_accuracies
from sklearn.metrics import roc_auc_score
from sklearn.metrics import roc_curve as sk_roc_curve
from sklearn.model_selection import KFold

from facebench.errors import FacebenchError
from facebench.eval.verification import (
    evaluate_distances,
    evaluate_embeddings,
    kfold_ids,
    roc_curve,
    squared_l2_distances,
)


def synthetic_pairs(seed: int, n_pairs: int = 600, dim: int = 16) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Left/right embeddings (matched = noisy copies, mismatched = independent) and shuffled labels."""
    rng = np.random.default_rng(seed)
    issame = rng.permutation(np.arange(n_pairs) % 2 == 0)
    left = rng.normal(size=(n_pairs, dim))
    noise = rng.uniform(0.6, 1.6)
    right = np.where(issame[:, None], left + noise * rng.normal(size=(n_pairs, dim)), rng.normal(size=(n_pairs, dim)))
    return left.astype(np.float32), right.astype(np.float32), issame


def plain_distances(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """insightface: normalise (float64), then sum of squared differences."""
    left = left / np.linalg.norm(left.astype(np.float64), axis=1, keepdims=True)
    right = right / np.linalg.norm(right.astype(np.float64), axis=1, keepdims=True)
    return np.sum(np.square(left - right), 1)


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
@pytest.mark.parametrize("given_folds", [False, True])
def test_accuracy_equals_plain_insightface_loop(seed: int, given_folds: bool) -> None:
    left, right, issame = synthetic_pairs(seed)
    folds = np.random.default_rng(seed + 100).permutation(np.arange(600) % 10) if given_folds else None
    result = evaluate_embeddings(left, right, issame, folds)
    dist = plain_distances(left, right)
    np.testing.assert_array_equal(squared_l2_distances(left, right), dist)
    ref_acc, ref_thresholds = reference_fold_accuracies(dist, issame, folds)
    assert 0.6 < result.accuracy < 1.0  # a non-trivial problem
    assert abs(result.accuracy - np.mean(ref_acc)) < 1e-9
    assert abs(result.accuracy_std - np.std(ref_acc)) < 1e-9
    np.testing.assert_allclose(result.fold_accuracy, ref_acc, rtol=0, atol=1e-12)
    np.testing.assert_array_equal(result.fold_threshold_sq_l2, ref_thresholds)
    assert result.threshold_sq_l2 == pytest.approx(np.mean(ref_thresholds), abs=1e-12)
    assert result.threshold_cosine == pytest.approx(1 - np.mean(ref_thresholds) / 2, abs=1e-12)
    assert result.folds_from == ("file" if given_folds else "kfold")


@pytest.mark.parametrize("seed", [5, 6])
def test_distances_on_the_threshold_grid_match_strict_less_than(seed: int) -> None:
    """Distances equal to grid thresholds and many ties: 'same' must mean strictly below."""
    rng = np.random.default_rng(seed)
    thresholds = np.arange(0, 4, 0.01)
    issame = rng.random(1000) < 0.5
    index = np.clip(np.where(issame, rng.normal(120, 40, 1000), rng.normal(180, 40, 1000)), 0, 399).astype(int)
    dist = thresholds[index]
    ref_acc, ref_thresholds = reference_fold_accuracies(dist, issame)
    result = evaluate_distances(dist, issame)
    assert abs(result.accuracy - np.mean(ref_acc)) < 1e-9
    assert abs(result.accuracy_std - np.std(ref_acc)) < 1e-9
    np.testing.assert_array_equal(result.fold_threshold_sq_l2, ref_thresholds)


def test_kfold_sizes_follow_sklearn_and_unequal_folds_average_unweighted() -> None:
    """605 pairs: folds of 61 x5 and 60 x5 as sklearn KFold; the mean is over folds, unweighted."""
    for n_pairs in (600, 605, 19):
        ids = kfold_ids(n_pairs)
        expected = np.empty(n_pairs, dtype=int)
        for f, (_, test) in enumerate(KFold(n_splits=10).split(np.arange(n_pairs))):
            expected[test] = f
        np.testing.assert_array_equal(ids, expected)
    left, right, issame = synthetic_pairs(7, n_pairs=605)
    dist = plain_distances(left, right)
    result = evaluate_distances(dist, issame)
    ref_acc, _ = reference_fold_accuracies(dist, issame)
    assert abs(result.accuracy - np.mean(ref_acc)) < 1e-9
    assert abs(result.accuracy_std - np.std(ref_acc)) < 1e-9
    sizes = np.bincount(kfold_ids(605))
    pooled = np.sum(np.array(result.fold_accuracy) * sizes) / 605
    assert result.accuracy != pytest.approx(pooled, abs=1e-12)  # unweighted, as insightface


def test_given_unequal_folds_are_refused() -> None:
    left, right, issame = synthetic_pairs(8, n_pairs=600)
    folds = np.r_[np.zeros(61, int), np.repeat(np.arange(1, 10), [60, 60, 60, 60, 60, 60, 60, 60, 59])]
    with pytest.raises(FacebenchError, match=r"unequal size \(61, 60, .*59 pairs\)"):
        evaluate_embeddings(left, right, issame, folds)
    with pytest.raises(FacebenchError, match="single fold"):
        evaluate_embeddings(left, right, issame, np.zeros(600, int))
    with pytest.raises(FacebenchError, match="fold 1 is empty"):
        evaluate_embeddings(left, right, issame, np.repeat([0, 2], 300))


@pytest.mark.parametrize("n_pairs", [6000, 5998, 21000])
def test_tar_at_far_matches_sklearn_roc_interpolation(n_pairs: int) -> None:
    left, right, issame = synthetic_pairs(9, n_pairs=n_pairs, dim=8)
    dist = plain_distances(left, right)
    result = evaluate_distances(dist, issame)
    fpr, tpr, _ = sk_roc_curve(issame, -dist, drop_intermediate=False)
    keep = np.r_[fpr[1:] != fpr[:-1], True]  # at a vertical step take its top
    n_neg = int((~issame).sum())
    for far, tar in result.tar_at_far.items():
        if float(far) * n_neg < 1:
            assert tar is None
        else:
            assert tar == pytest.approx(np.interp(float(far), fpr[keep], tpr[keep]), abs=1e-12)
    assert (result.tar_at_far["1e-04"] is None) == (n_pairs < 20000)
    assert result.tar_at_far["1e-03"] is not None
    assert result.roc_auc == pytest.approx(roc_auc_score(issame, -dist), abs=1e-12)


def test_roc_points_equal_sklearn_and_far_frr_eer_are_consistent() -> None:
    left, right, issame = synthetic_pairs(10, n_pairs=3000)
    dist = np.round(plain_distances(left, right), 2)  # many ties
    far, tar, cuts = roc_curve(dist, issame)
    fpr, tpr, sk_thresholds = sk_roc_curve(issame, -dist, drop_intermediate=False)
    np.testing.assert_allclose(far, fpr, atol=1e-15)
    np.testing.assert_allclose(tar, tpr, atol=1e-15)
    np.testing.assert_array_equal(cuts[1:], -sk_thresholds[1:])
    result = evaluate_distances(dist, issame)
    t = result.threshold_sq_l2
    assert result.far == np.sum((dist < t) & ~issame) / np.sum(~issame)
    assert result.frr == np.sum((dist >= t) & issame) / np.sum(issame)
    # EER lies between the best balanced operating points on either side of the crossing
    frr = 1 - tar
    worse = np.maximum(far, frr)
    better = np.minimum(far, frr)
    assert better[np.argmin(worse)] - 1e-12 <= result.eer <= worse.min() + 1e-12


def test_perfect_separation() -> None:
    issame = np.arange(600) % 2 == 0
    dist = np.where(issame, 0.5, 1.5)  # each fold's threshold lands in the gap the other folds show
    result = evaluate_distances(dist, issame)
    assert result.accuracy == 1.0
    assert result.accuracy_std == 0.0
    assert result.eer == 0.0
    assert result.roc_auc == 1.0
    assert result.far == 0.0 and result.frr == 0.0
    assert all(v == 1.0 for v in result.tar_at_far.values() if v is not None)


def test_identical_scores_are_chance() -> None:
    issame = np.arange(600) % 2 == 0
    result = evaluate_distances(np.full(600, 1.0), issame)
    assert result.accuracy == 0.5
    assert result.eer == 0.5
    assert result.roc_auc == 0.5


def test_bad_inputs() -> None:
    with pytest.raises(FacebenchError, match="needs both"):
        evaluate_distances(np.linspace(0, 2, 20), np.ones(20, bool))
    with pytest.raises(FacebenchError, match="NaN"):
        evaluate_distances(np.r_[np.nan, np.ones(19)], np.arange(20) % 2 == 0)
    with pytest.raises(FacebenchError, match="5 pairs cannot make 10 folds"):
        evaluate_distances(np.ones(5), np.arange(5) % 2 == 0)
    with pytest.raises(FacebenchError, match="no pairs"):
        evaluate_distances(np.ones(0), np.ones(0, bool))
