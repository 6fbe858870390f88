"""IoU tracking on synthetic boxes and the identity-consistency figure against brute force."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from facebench.profiling.tracking import (
    IouTracker,
    greedy_match,
    identity_consistency,
    iou_matrix,
)


def test_iou_matrix_values() -> None:
    a = np.array([[0, 0, 10, 10], [0, 0, 2, 2]])
    b = np.array([[5, 0, 15, 10], [0, 0, 10, 10], [20, 20, 30, 30]])
    iou = iou_matrix(a, b)
    assert iou.shape == (2, 3)
    assert iou[0, 0] == pytest.approx(50 / 150)  # half overlap: 50 / (100 + 100 - 50)
    assert iou[0, 1] == pytest.approx(1.0)
    assert iou[0, 2] == 0.0
    assert iou[1, 1] == pytest.approx(4 / 100)
    assert iou_matrix(np.zeros((0, 4)), b).shape == (0, 3)


def test_greedy_match_takes_best_pairs_first_and_respects_threshold() -> None:
    iou = np.array([[0.5, 0.6], [0.4, 0.1], [0.05, 0.0]])
    # (0, 1) is best; then row 1 can only take column 0; row 2 is below the threshold
    assert greedy_match(iou, 0.3) == [(0, 1), (1, 0)]
    assert greedy_match(iou, 0.55) == [(0, 1)]
    assert greedy_match(np.zeros((0, 2)), 0.3) == []


def test_tracker_follows_moving_boxes_in_any_detection_order() -> None:
    tracker = IouTracker(iou_threshold=0.3, max_missed=1)
    left, right = np.array([10, 10, 60, 60.0]), np.array([200, 10, 250, 60.0])
    assert tracker.update(np.stack([left, right])) == [0, 1]
    for step in range(1, 6):
        shift = np.array([5, 0, 5, 0.0]) * step
        # detections come back in the opposite order every other frame
        boxes = np.stack([right + shift, left + shift]) if step % 2 else np.stack([left + shift, right + shift])
        assert tracker.update(boxes) == ([1, 0] if step % 2 else [0, 1])
    # a third face appears far from both: new id
    assert tracker.update(np.stack([left + 25, right + 25, [400, 300, 450, 350]])) == [0, 1, 2]


def test_tracker_ends_tracks_missing_too_long() -> None:
    tracker = IouTracker(iou_threshold=0.3, max_missed=2)
    box = np.array([[0, 0, 50, 50.0]])
    assert tracker.update(box) == [0]
    assert tracker.update(np.zeros((0, 4))) == []
    assert tracker.update(np.zeros((0, 4))) == []
    assert tracker.update(box) == [0]  # missed 2 frames: still alive
    for _ in range(3):
        tracker.update(np.zeros((0, 4)))
    assert tracker.update(box) == [1]  # missed 3 > 2: a new track


def _brute_force(ids: list[int], emb: np.ndarray) -> tuple[float, float]:
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    consecutive = []
    for track in set(ids):
        members = [i for i, t in enumerate(ids) if t == track]
        consecutive += [unit[a] @ unit[b] for a, b in itertools.pairwise(members)]
    between = [unit[i] @ unit[j] for i, j in itertools.permutations(range(len(ids)), 2) if ids[i] != ids[j]]
    return float(np.mean(consecutive)), float(np.mean(between))


def test_identity_consistency_matches_brute_force() -> None:
    rng = np.random.default_rng(0)
    ids = [0, 1, 0, 2, 1, 0, 2, 2, 1]
    emb = rng.normal(size=(len(ids), 16))
    result = identity_consistency(ids, emb)
    consecutive, between = _brute_force(ids, emb)
    assert result["tracks"] == 3
    assert result["track_pairs_consecutive"] == 6
    assert result["track_cos_consecutive"] == pytest.approx(consecutive, abs=1e-12)
    assert result["track_cos_between"] == pytest.approx(between, abs=1e-12)


def test_identity_consistency_separates_identities() -> None:
    # two identities: embeddings near two orthogonal directions
    rng = np.random.default_rng(1)
    base = np.eye(8)[:2]
    ids = [0, 1] * 5
    emb = base[ids] + 0.05 * rng.normal(size=(10, 8))
    result = identity_consistency(ids, emb)
    assert result["track_cos_consecutive"] > 0.98
    assert abs(result["track_cos_between"]) < 0.1


def test_identity_consistency_without_pairs_is_nan() -> None:
    empty = identity_consistency([], np.zeros((0, 0)))
    assert empty["tracks"] == 0 and np.isnan(empty["track_cos_consecutive"]) and np.isnan(empty["track_cos_between"])
    single = identity_consistency([0], np.ones((1, 4)))
    assert single["tracks"] == 1 and np.isnan(single["track_cos_consecutive"]) and np.isnan(single["track_cos_between"])


@pytest.mark.parametrize("bad", [np.inf, np.nan, 0.0])
def test_identity_consistency_with_unusable_embeddings_is_nan(bad: float) -> None:
    emb = np.ones((4, 3))
    emb[2] = bad
    result = identity_consistency([0, 1, 0, 1], emb)
    assert result["tracks"] == 2 and result["track_pairs_consecutive"] == 2
    assert np.isnan(result["track_cos_consecutive"]) and np.isnan(result["track_cos_between"])
