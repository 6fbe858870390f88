"""Paired operating-point comparisons of two runs on the same images, against direct computations."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.eval.operating_points import exact_threshold, score_pairs, weighted_fnmr
from facebench.eval.paired_points import load_pair_scores, pair_scores_name, paired_points, save_pair_scores


def embeddings(seed: int, n_ids: int = 300, noise: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
    """Identities of 1-9 images around random centres in 32-d, L2-normalised."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 10, n_ids)
    labels = np.repeat(np.arange(n_ids), sizes)
    centres = rng.normal(size=(n_ids, 32))
    noisy = np.random.default_rng(seed)
    emb = centres[labels] + noise * noisy.normal(size=(labels.size, 32))
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32), labels


@pytest.fixture(scope="module")
def runs() -> tuple:
    emb, labels = embeddings(1)
    worse, _ = embeddings(2, noise=1.1)  # the same images, a noisier "variant"
    return score_pairs(emb, labels), score_pairs(worse, labels)


def test_a_run_against_itself_differs_by_nothing(runs) -> None:
    reference, _ = runs
    for point in paired_points(reference, reference, replicates=50):
        assert point.diff_at_reference_threshold_pp == 0 and point.diff_at_own_threshold_pp == 0
        assert (point.low_at_own_threshold_pp, point.high_at_own_threshold_pp) == (0, 0)


def test_point_estimates_equal_a_direct_computation(runs) -> None:
    reference, other = runs
    points = paired_points(reference, other, replicates=200)
    for point in points:
        allowed = int(float(point.fmr) * reference.n_impostor)
        t_ref, t_own = exact_threshold(reference.impostor, allowed), exact_threshold(other.impostor, allowed)
        base = 100 * np.mean(reference.genuine < t_ref)
        assert point.reference_fnmr_pct == pytest.approx(base)
        assert point.fnmr_at_reference_threshold_pct == pytest.approx(100 * np.mean(other.genuine < t_ref))
        assert point.fnmr_at_own_threshold_pct == pytest.approx(100 * np.mean(other.genuine < t_own))
        assert point.fmr_at_reference_threshold == np.count_nonzero(other.impostor >= t_ref) / other.n_impostor
        assert point.low_at_own_threshold_pp <= point.diff_at_own_threshold_pp <= point.high_at_own_threshold_pp
    assert points[0].diff_at_own_threshold_pp > 0  # the noisier run rejects more genuine pairs


def test_weighted_fnmr_with_every_identity_once_is_the_plain_fnmr(runs) -> None:
    reference, _ = runs
    counts = np.ones((1, reference.sizes.size), dtype=np.int32)
    thresholds = np.array([[0.3, 0.5, np.nan]], dtype=np.float32)
    fnmr = weighted_fnmr(reference, counts, thresholds)
    assert fnmr[0, 0] == np.mean(reference.genuine < np.float32(0.3))
    assert fnmr[0, 1] == np.mean(reference.genuine < np.float32(0.5)) and np.isnan(fnmr[0, 2])
    twice = counts.copy()
    twice[0, 0] = 2  # identity 0 drawn twice: its genuine pairs count double
    mine = reference.genuine[reference.genuine_identity == 0]
    expected = (np.sum(reference.genuine < 0.5) + np.sum(mine < 0.5)) / (reference.genuine.size + mine.size)
    assert weighted_fnmr(reference, twice, thresholds)[0, 1] == pytest.approx(expected)


def test_saved_scores_give_the_same_comparison(tmp_path: Path, runs) -> None:
    reference, other = runs
    save_pair_scores(tmp_path / "a.npz", reference)
    save_pair_scores(tmp_path / "b.npz", other)
    loaded = load_pair_scores(tmp_path / "a.npz")
    assert loaded.impostor.size < reference.impostor.size and loaded.n_impostor == reference.n_impostor
    direct = paired_points(reference, other, replicates=100)
    saved = paired_points(loaded, load_pair_scores(tmp_path / "b.npz"), replicates=100)
    assert saved == direct


def test_saved_scores_file_names_are_portable() -> None:
    assert pair_scores_name("lfw-all") == "pairs_lfw-all.npz"
    assert pair_scores_name("lfw-all@downscale:24+jpeg:20") == "pairs_lfw-all@downscale_24+jpeg_20.npz"


def test_different_images_and_broken_files_refused(tmp_path: Path, runs) -> None:
    reference, _ = runs
    emb, labels = embeddings(3, n_ids=50)
    with pytest.raises(FacebenchError, match="scored different images"):
        paired_points(reference, score_pairs(emb, labels), replicates=10)
    (tmp_path / "bad.npz").write_text("not numpy")
    with pytest.raises(FacebenchError, match="bad.npz: not a facebench pairs-scores file"):
        load_pair_scores(tmp_path / "bad.npz")
