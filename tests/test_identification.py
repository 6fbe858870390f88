"""1:N identification against a brute-force search, the gallery rule and tie rules by hand, bad inputs."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest
from test_operating_points import grid_embeddings, lfw_like_sizes, sign_embeddings

from facebench.errors import FacebenchError
from facebench.eval.identification import evaluate_identification, split_gallery


def brute_force(emb: np.ndarray, labels: np.ndarray, probe: np.ndarray | None = None) -> dict:
    """Gallery rule, ranks and FNIR spelt out with Python loops over a full score matrix."""
    probe = emb if probe is None else probe
    first: dict[int, int] = {}
    for i, label in enumerate(labels):
        first.setdefault(int(label), i)
    sizes = {label: int(np.count_nonzero(labels == label)) for label in first}
    gallery = [first[label] for label in sorted(first) if sizes[label] >= 2]
    mated = [i for i in range(len(labels)) if sizes[int(labels[i])] >= 2 and i not in gallery]
    nonmated = [i for i in range(len(labels)) if sizes[int(labels[i])] == 1]
    scores = probe @ emb[gallery].T
    ranks, mate_scores = [], []
    for i in mated:
        mate = next(c for c, g in enumerate(gallery) if labels[g] == labels[i])
        mate_scores.append(scores[i, mate])
        ranks.append(1 + sum(scores[i, c] >= scores[i, mate] for c in range(len(gallery)) if c != mate))
    ranks, mate_scores = np.array(ranks), np.array(mate_scores)
    top = np.sort(scores[nonmated].max(axis=1))[::-1] if nonmated else np.array([])
    out = {"n_gallery": len(gallery), "n_mated": len(mated), "n_nonmated": len(nonmated),
           "rank1": float(np.mean(ranks <= 1)), "rank5": float(np.mean(ranks <= 5))}
    for key, rate in (("1e-2", 1e-2), ("1e-3", 1e-3)):
        allowed = int(Fraction(repr(rate)) * len(nonmated))
        if allowed < 1:
            out[f"fnir_fpir_{key}"] = None
            continue
        higher = top[top > top[allowed]]
        threshold = higher.min() if higher.size else np.nextafter(top[allowed], np.float32(np.inf))
        out[f"fnir_fpir_{key}"] = float(1 - np.mean((ranks == 1) & (mate_scores >= threshold)))
    return out


@pytest.mark.parametrize("block_bytes", [128 * 2**20, 16 * 300, 1])
def test_matches_brute_force(block_bytes: int) -> None:
    rng = np.random.default_rng(0)
    sizes = [1] * 1100 + [int(n) for n in rng.integers(2, 8, size=400)]
    emb, labels = grid_embeddings(rng, sizes, spread=1.0)
    order = rng.permutation(len(emb))  # identities interleaved: "first" is by position
    emb, labels = emb[order], labels[order]
    result = evaluate_identification(emb, labels, block_bytes=block_bytes)
    assert result.to_row() == brute_force(emb, labels)
    assert result.n_nonmated >= 1000  # FPIR 1e-3 resolvable
    assert 0 < result.rank1 <= result.rank5 < 1


def test_matches_brute_force_with_ties_and_probes() -> None:
    rng = np.random.default_rng(1)
    emb, labels = sign_embeddings(rng, lfw_like_sizes(rng, 400))
    probe, _ = sign_embeddings(np.random.default_rng(2), [len(emb)], flips=0)
    probe = np.where(rng.random(emb.shape) < 0.15, probe, emb).astype(np.float32)  # some coordinates replaced
    result = evaluate_identification(emb, labels, probe, block_bytes=16 * 50)
    assert result.to_row() == brute_force(emb, labels, probe)
    assert result.to_row() != evaluate_identification(emb, labels).to_row()


def test_gallery_rule_by_hand() -> None:
    identity = np.array([2, 0, 1, 0, 2, 3, 2])  # identity 1 and 3 have one image each
    gallery, mated, nonmated = split_gallery(identity)
    assert gallery.tolist() == [1, 0]  # identity 0's first image is 1, identity 2's is 0
    assert mated.tolist() == [3, 4, 6] and nonmated.tolist() == [2, 5]


R = float(np.float32(np.sqrt(0.5)))


def hand_set(nonmated_top: list[float]) -> tuple[np.ndarray, np.ndarray]:
    """Gallery A (1, 0), B (0, 1); mated A1 (0.6, 0.8): rank 2; B1 (r, r): ties A and B, rank 2 by the tie
    rule; B2 (0.6, 0.8): rank 1, score 0.8. Then 100 non-mated searches, the first at ``nonmated_top``, the
    rest scoring below 0."""
    rest = [(-np.cos(a), -np.sin(a)) for a in np.linspace(0.1, 1.4, 99)]
    emb = np.array([(1, 0), (0, 1), (0.6, 0.8), (R, R), (0.6, 0.8), nonmated_top, *rest], dtype=np.float32)
    return emb, np.r_[0, 1, 0, 1, 1, np.arange(100) + 10]


def test_ranks_ties_and_fnir_by_hand() -> None:
    result = evaluate_identification(*hand_set([0.8, 0.6]))
    assert (result.n_gallery, result.n_mated, result.n_nonmated) == (2, 3, 100)
    assert result.rank1 == pytest.approx(1 / 3) and result.rank5 == 1.0
    # FPIR 1e-2 of 100 allows one: t = the top non-mated score 0.8, and B2's mate score 0.8 >= t is a hit
    assert result.threshold["1e-2"] == pytest.approx(0.8) and result.fnir["1e-2"] == pytest.approx(2 / 3)
    assert result.fnir["1e-3"] is None and result.threshold["1e-3"] is None  # 100 < 1/1e-3
    assert list(result.to_row()) == ["rank1", "rank5", "fnir_fpir_1e-2", "fnir_fpir_1e-3", "n_gallery", "n_mated",
                                     "n_nonmated"]


def test_a_rank_one_mate_below_the_threshold_is_a_miss() -> None:
    result = evaluate_identification(*hand_set([0.96, 0.28]))
    assert result.rank1 == pytest.approx(1 / 3)
    assert result.threshold["1e-2"] == pytest.approx(0.96) and result.fnir["1e-2"] == 1.0


@pytest.mark.parametrize(
    ("emb", "labels", "probe", "message"),
    [
        (np.eye(3, dtype=np.float32), np.array([1, 2, 3]), None, "nothing to enrol"),
        (np.eye(3, dtype=np.float32), np.array([1, 1]), None, "labels must be"),
        (np.eye(3, dtype=np.float32), np.array([1, 1, 2]), np.eye(2), "must match"),
        (3 * np.eye(3, dtype=np.float32), np.array([1, 1, 2]), None, "L2-normalised"),
    ],
)
def test_bad_inputs(emb, labels, probe, message: str) -> None:
    with pytest.raises(FacebenchError, match=message):
        evaluate_identification(emb, labels, probe)
