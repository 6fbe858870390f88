"""All-pairs operating points against a brute-force full score matrix, the tie and n/a rules, the
bootstrap's weights against a materialised resample, and its coverage on simulated scores."""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from facebench.errors import FacebenchError
from facebench.eval.operating_points import (
    FMR_TARGETS,
    PairScores,
    allowed_count,
    evaluate_all_pairs,
    exact_threshold,
    impostor_weight,
    kept_size,
    operating_points,
    rate_key,
    replicate_operating_points,
    row_blocks,
    score_bins,
    score_pairs,
)


def grid_embeddings(rng: np.random.Generator, sizes: list[int], d: int = 64, spread: float = 0.9) -> tuple:
    """Clustered unit vectors on a 2^-11 grid: every dot product is exact in float32 whatever the summation
    order, so the blocked scores equal the full matrix's bit for bit (BLAS small-block kernels sum differently)."""
    centres = rng.standard_normal((len(sizes), d))
    labels = np.repeat(np.arange(len(sizes)) * 7 + 3, sizes)  # any integers, not 0..n-1
    x = centres[np.repeat(np.arange(len(sizes)), sizes)] + spread * rng.standard_normal((sum(sizes), d))
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return (np.round(x * 2048) / 2048).astype(np.float32), labels


def sign_embeddings(rng: np.random.Generator, sizes: list[int], flips: int = 4) -> tuple:
    """±1/4 vectors in 16-d (exact unit norm): scores are multiples of 1/8, so nearly every score ties."""
    centres = rng.choice([-0.25, 0.25], size=(len(sizes), 16))
    x = centres[np.repeat(np.arange(len(sizes)), sizes)].copy()
    for row in x:
        row[rng.choice(16, size=flips, replace=False)] *= -1
    return x.astype(np.float32), np.repeat(np.arange(len(sizes)), sizes)


def lfw_like_sizes(rng: np.random.Generator, n_identities: int) -> list[int]:
    """Mostly one or two images per identity, a few large ones."""
    return [int(s) for s in np.minimum(rng.geometric(0.45, n_identities), 40)]


def brute_force(emb: np.ndarray, labels: np.ndarray, probe: np.ndarray | None = None) -> dict:
    """The full score matrix, its upper triangle, and the threshold rule by plain masking."""
    full = emb @ (emb if probe is None else probe).T
    i, j = np.triu_indices(len(emb), k=1)
    scores = full[i, j]
    same = labels[i] == labels[j]
    genuine, impostor = scores[same], np.sort(scores[~same])[::-1]
    out = {"n_genuine": genuine.size, "n_impostor": impostor.size}
    for rate in FMR_TARGETS:
        allowed = int(Fraction(repr(rate)) * impostor.size)
        if allowed < 1:
            out[rate] = (None, None)
            continue
        higher = impostor[impostor > impostor[allowed]]
        threshold = higher.min() if higher.size else np.nextafter(impostor[allowed], np.float32(np.inf))
        assert np.count_nonzero(impostor >= threshold) <= allowed
        out[rate] = (float(threshold), float(np.mean(genuine < threshold)))
    return out


def assert_matches_brute_force(result, brute: dict) -> None:
    assert result.n_genuine == brute["n_genuine"]
    assert result.n_impostor == brute["n_impostor"]
    for rate in FMR_TARGETS:
        point = result.points[rate_key(rate)]
        assert point.threshold_from in ("impostors", None)
        assert (point.threshold, point.fnmr) == brute[rate]


@pytest.mark.parametrize(
    ("block_bytes", "max_kept"),
    [(256 * 2**20, 8_000_000), (20 * 3000, 8_000_000), (20 * 200, 8_000_000), (20 * 3000, 25_000)],
    ids=["one-block", "small-blocks", "tiny-blocks", "small-blocks-and-cap"],
)
def test_matches_brute_force_exactly(block_bytes: int, max_kept: int) -> None:
    rng = np.random.default_rng(0)
    emb, labels = grid_embeddings(rng, lfw_like_sizes(rng, 700))
    result = evaluate_all_pairs(emb, labels, replicates=0, block_bytes=block_bytes, max_kept=max_kept)
    assert result.n_images == len(emb) and result.n_identities == 700
    assert_matches_brute_force(result, brute_force(emb, labels))


def test_matches_brute_force_with_degraded_probes() -> None:
    rng = np.random.default_rng(1)
    emb, labels = grid_embeddings(rng, lfw_like_sizes(rng, 500))
    probe, _ = grid_embeddings(np.random.default_rng(2), [len(emb)])
    probe = (np.round((emb + 0.5 * probe) / np.linalg.norm(emb + 0.5 * probe, axis=1, keepdims=True) * 2048)
             / 2048).astype(np.float32)
    result = evaluate_all_pairs(emb, labels, probe, replicates=0, block_bytes=20 * 2000)
    assert_matches_brute_force(result, brute_force(emb, labels, probe))
    plain = evaluate_all_pairs(emb, labels, replicates=0)
    assert plain.points["1e-2"].fnmr != result.points["1e-2"].fnmr


@pytest.mark.parametrize("max_kept", [8_000_000, 4000, 50])
def test_ties_match_brute_force(max_kept: int) -> None:
    """Scores in steps of 1/8: the rule never splits a tie; with small caps the partition drops whole tie
    groups, and a target the kept scores can't reach comes from the histogram (the same rule on bins)."""
    rng = np.random.default_rng(3)
    emb, labels = sign_embeddings(rng, lfw_like_sizes(rng, 600))
    brute = brute_force(emb, labels)
    result = evaluate_all_pairs(emb, labels, replicates=0, block_bytes=20 * 1000, max_kept=max_kept)
    assert result.n_kept <= kept_size(result.n_impostor, 1e-2, max_kept)
    for rate in FMR_TARGETS:
        point = result.points[rate_key(rate)]
        if point.threshold_from == "histogram":
            assert max_kept < 8_000_000
            # bins of width 1e-4 hold one score value each here, so the binned rule gives the same FNMR;
            # its threshold is the lowest bin edge above the excluded tie, not the next impostor value
            assert point.fnmr == brute[rate][1]
            assert brute[rate][0] - 0.125 < point.threshold <= brute[rate][0]
        else:
            assert (point.threshold, point.fnmr) == brute[rate]


def test_threshold_and_tie_rule_by_hand() -> None:
    descending = np.array([0.9, 0.8, 0.8, 0.8, 0.5, 0.4], dtype=np.float32)
    assert exact_threshold(descending, 1) == np.float32(0.9)  # the 0.8 tie would accept 4 > 1
    assert exact_threshold(descending, 3) == np.float32(0.9)  # accepting all three 0.8s makes 4 > 3
    assert exact_threshold(descending, 4) == np.float32(0.8)  # 0.9 and the three 0.8s: 4 <= 4
    assert exact_threshold(descending, 5) == np.float32(0.5)
    tied_top = np.array([0.7, 0.7, 0.7], dtype=np.float32)
    assert exact_threshold(tied_top, 1) == np.nextafter(np.float32(0.7), np.float32(1))  # accept none
    assert allowed_count(1e-2, 300) == 3 and allowed_count(1e-3, 999) == 0 and allowed_count(1e-6, 10**7) == 10


def tiny_scores(genuine: list[tuple[float, int]], impostors: list[tuple[float, int, int]], identity: list[int]):
    """A PairScores by hand: genuine (score, identity), impostor (score, image i, image j), identity per image."""
    identity = np.array(identity)
    order = np.argsort([-s for s, _, _ in impostors], kind="stable")
    impostor = np.array([impostors[k][0] for k in order], dtype=np.float32)
    return PairScores(
        identity=identity,
        sizes=np.bincount(identity).astype(np.int64),
        genuine=np.array([s for s, _ in genuine], dtype=np.float32),
        genuine_identity=np.array([a for _, a in genuine]),
        impostor=impostor,
        impostor_pairs=np.array([impostors[k][1:] for k in order], dtype=np.int32),
        cutoff=-2.0,
        histogram=np.bincount(score_bins(impostor, 200), minlength=200),
        n_impostor=len(impostors),
    )


def test_fnmr_and_resolution_by_hand() -> None:
    """Identities A (images 0, 1), B (2, 3), C (4): 2 genuine and 8 impostor pairs."""
    identity = [0, 0, 1, 1, 2]
    impostors = [(0.6, 0, 2), (0.5, 0, 3), (0.5, 1, 2), (0.2, 1, 3), (0.1, 0, 4), (0.0, 1, 4), (-0.1, 2, 4),
                 (-0.3, 3, 4)]
    scores = tiny_scores([(0.65, 0), (0.3, 1)], impostors, identity)
    points = operating_points(scores, fmr_targets=(0.5, 0.25, 0.1), replicates=0).points
    half, quarter, tenth = points["5e-1"], points["2e-1"], points["1e-1"]
    assert (half.threshold, half.fnmr) == (pytest.approx(0.2), 0.0)  # 4 allowed: 0.6, 0.5, 0.5, 0.2
    assert (quarter.threshold, quarter.fnmr) == (pytest.approx(0.6), 0.5)  # 2 allowed; the 0.5 tie would make 3
    assert quarter.resolvable and not quarter.well_resolved and quarter.threshold_from == "impostors"
    assert not tenth.resolvable and (tenth.threshold, tenth.fnmr, tenth.lo) == (None, None, None)  # floor(0.8) = 0
    row = operating_points(scores, fmr_targets=(0.125,), replicates=0).to_row()
    assert row["fnmr_fmr_1e-1"] == 0.5 and row["threshold_fmr_1e-1"] == pytest.approx(0.6)  # 1 allowed


def test_na_below_one_over_fmr() -> None:
    rng = np.random.default_rng(4)
    emb, labels = grid_embeddings(rng, lfw_like_sizes(rng, 300))
    result = evaluate_all_pairs(emb, labels, replicates=50)
    n = result.n_impostor
    assert 10**5 <= n < 10**6  # 1e-2..1e-5 resolvable, 1e-6 not
    row = result.to_row()
    for rate in FMR_TARGETS:
        key, point = rate_key(rate), result.points[rate_key(rate)]
        assert point.resolvable == (n * rate >= 1)
        assert point.well_resolved == (n * rate >= 10)
        if not point.resolvable:
            assert row[f"fnmr_fmr_{key}"] is None and row[f"threshold_fmr_{key}"] is None
            assert row[f"fnmr_fmr_{key}_lo"] is None and row[f"fnmr_fmr_{key}_hi"] is None
        else:
            assert row[f"fnmr_fmr_{key}_lo"] <= row[f"fnmr_fmr_{key}"] <= row[f"fnmr_fmr_{key}_hi"]
    assert row["protocol"] == "all-pairs" and 0 < row["eer"] < 0.5
    assert list(row)[:5] == ["protocol", "n_images", "n_identities", "n_genuine", "n_impostor"]


def test_eer_and_det_against_brute_force() -> None:
    rng = np.random.default_rng(5)
    emb, labels = grid_embeddings(rng, lfw_like_sizes(rng, 400), spread=1.6)
    result = evaluate_all_pairs(emb, labels, replicates=0, block_bytes=20 * 5000)
    full = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    same = labels[i] == labels[j]
    genuine, impostor = full[i, j][same], full[i, j][~same]
    edges = result.det_threshold
    assert np.all(np.diff(result.det_fmr) <= 0) and np.all(np.diff(result.det_fnmr) >= 0)
    k = len(edges) // 2
    assert result.det_fmr[k] == pytest.approx(np.mean(impostor >= edges[k]), abs=1e-4)
    assert result.det_fnmr[k] == pytest.approx(np.mean(genuine < edges[k]), abs=1e-3)
    fine = np.linspace(-1, 1, 200_001)
    fmr = 1 - np.searchsorted(np.sort(impostor), fine) / impostor.size
    fnmr = np.searchsorted(np.sort(genuine), fine) / genuine.size
    assert result.eer == pytest.approx(fmr[np.argmin(np.abs(fmr - fnmr))], abs=3e-3)


def test_impostor_weight_formula() -> None:
    """W = ((sum c_a n_a)^2 - sum c_a^2 n_a^2) / 2 equals the explicit sum over identity pairs a < b."""
    rng = np.random.default_rng(6)
    sizes = rng.integers(1, 6, size=9)
    counts = rng.multinomial(9, np.full(9, 1 / 9), size=20)
    explicit = [sum(c[a] * c[b] * sizes[a] * sizes[b] for a in range(9) for b in range(a + 1, 9)) for c in counts]
    assert impostor_weight(counts, sizes).tolist() == explicit
    assert impostor_weight(np.ones((1, 9), dtype=np.int64), sizes)[0] == (sizes.sum() ** 2 - (sizes**2).sum()) // 2


def materialised(emb: np.ndarray, identity: np.ndarray, counts: np.ndarray, rate: float) -> tuple[float, float]:
    """One bootstrap replicate built explicitly: every drawn copy of an identity adds its images; pairs within
    a copy are genuine, pairs across copies of different identities impostor, across copies of one identity
    dropped; then the threshold rule and FNMR on that set."""
    copies = [(a, copy) for a in range(counts.size) for copy in range(counts[a])]
    images = [(a, copy, i) for a, copy in copies for i in np.flatnonzero(identity == a)]
    genuine, impostor = [], []
    for x in range(len(images)):
        for y in range(x + 1, len(images)):
            (a, ca, i), (b, cb, j) = images[x], images[y]
            if i == j:
                continue
            score = emb[min(i, j)] @ emb[max(i, j)]
            if (a, ca) == (b, cb) and i < j:
                genuine.append(score)
            elif a != b:
                impostor.append(score)
    impostor = np.sort(np.array(impostor, dtype=np.float32))[::-1]
    threshold = exact_threshold(impostor, allowed_count(rate, impostor.size))
    return float(threshold), float(np.mean(np.array(genuine, dtype=np.float32) < threshold))


def test_weighted_replicate_equals_materialised_resample() -> None:
    rng = np.random.default_rng(7)
    emb, labels = sign_embeddings(rng, [3, 2, 1, 4, 2, 1, 3], flips=5)
    scores = score_pairs(emb, labels, max_fmr=0.5)
    assert scores.impostor.size == scores.n_impostor  # all kept at this size
    for counts in ([2, 0, 1, 1, 0, 2, 1], [0, 3, 1, 1, 1, 0, 1], [1, 1, 1, 1, 1, 1, 1]):
        counts = np.array(counts)
        thresholds, fnmr, covered = replicate_operating_points(scores, counts[None, :], (0.1, 0.05, 0.02))
        assert covered.all()
        n_impostor = impostor_weight(counts[None, :], scores.sizes)[0]
        for t, rate in enumerate((0.1, 0.05, 0.02)):
            expected = materialised(emb, scores.identity, counts, rate)
            assert (float(np.float32(thresholds[0, t])), fnmr[0, t]) == expected, (counts, rate, n_impostor)


def simulated_scores(rng: np.random.Generator, n_identities: int, sd_identity: float) -> tuple[PairScores, float]:
    """Scores for a set whose genuine scores share an identity-level random effect, and the population FNMR
    at FMR 1e-2: impostors ~ N(0, 1) iid, genuine = 2.4 + u_a + e, u_a ~ N(0, sd_identity), e ~ N(0, 0.6)."""
    from scipy.stats import norm

    sizes = rng.integers(1, 6, size=n_identities)
    identity = np.repeat(np.arange(n_identities), sizes)
    i, j = np.triu_indices(identity.size, k=1)
    same = identity[i] == identity[j]
    effect = rng.normal(0, sd_identity, n_identities)
    gen_id = identity[i[same]]
    genuine = (2.4 + effect[gen_id] + rng.normal(0, 0.6, gen_id.size)).astype(np.float32) / 10
    impostor = rng.standard_normal(np.count_nonzero(~same)).astype(np.float32) / 10
    keep = kept_size(impostor.size, 1e-2, 10**9)
    top = np.argpartition(-impostor, keep)[:keep]
    top = top[np.argsort(-impostor[top], kind="stable")]
    pairs = np.stack((i[~same][top], j[~same][top]), axis=1).astype(np.int32)
    scores = PairScores(identity=identity, sizes=sizes.astype(np.int64), genuine=genuine, genuine_identity=gen_id,
                        impostor=impostor[top], impostor_pairs=pairs, cutoff=float(impostor[top][-1]),
                        histogram=np.bincount(score_bins(impostor, 2000), minlength=2000),
                        n_impostor=impostor.size)
    true_fnmr = norm.cdf((norm.ppf(0.99) - 2.4) / np.hypot(sd_identity, 0.6))
    return scores, float(true_fnmr)


def test_bootstrap_interval_covers_the_true_fnmr() -> None:
    """With strong identity effects the nominal 95 % interval over identities covers the population FNMR in
    roughly 90-99 % of simulated sets (an interval over pairs would be far too narrow)."""
    rng = np.random.default_rng(8)
    hits, widths = 0, []
    n_sets = 150
    for _ in range(n_sets):
        scores, true_fnmr = simulated_scores(rng, 120, sd_identity=0.8)
        point = operating_points(scores, fmr_targets=(1e-2,), replicates=200, seed=int(rng.integers(1 << 30))
                                 ).points["1e-2"]
        assert point.uncovered == 0
        hits += point.lo <= true_fnmr <= point.hi
        widths.append(point.hi - point.lo)
    assert 0.88 * n_sets <= hits <= 0.995 * n_sets, hits
    assert np.median(widths) > 0.05


def test_bootstrap_is_seeded_and_reports_uncovered_replicates() -> None:
    rng = np.random.default_rng(9)
    emb, labels = grid_embeddings(rng, lfw_like_sizes(rng, 200))
    first = evaluate_all_pairs(emb, labels, replicates=100, seed=3)
    assert first.to_row() == evaluate_all_pairs(emb, labels, replicates=100, seed=3).to_row()
    assert first.bootstrap.unit == "identities" and first.bootstrap.replicates == 100
    needed = allowed_count(1e-2, first.n_impostor) + 1
    scores = score_pairs(emb, labels, max_kept=needed + 20)  # the point is exact, many replicates' tails are not
    point = operating_points(scores, replicates=100).points["1e-2"]
    assert point.threshold == first.points["1e-2"].threshold and point.threshold_from == "impostors"
    assert 0 < point.uncovered < 100 and point.lo is None and point.hi is None


def test_row_blocks_cover_every_row_within_budget() -> None:
    blocks = row_blocks(1000, 20 * 5000)
    assert blocks[0][0] == 0 and blocks[-1][1] == 1000
    assert all(a[1] == b[0] for a, b in zip(blocks, blocks[1:], strict=False))
    assert all((i1 - i0) * (1000 - i0) <= 5000 or i1 - i0 == 1 for i0, i1 in blocks)


@pytest.mark.parametrize(
    ("emb", "labels", "probe", "message"),
    [
        (np.eye(3, dtype=np.float32), np.array([1, 1, 1]), None, "one identity"),
        (np.eye(3, dtype=np.float32), np.array([1, 2, 3]), None, "no genuine pairs"),
        (np.eye(3, dtype=np.float32), np.array([1, 1]), None, "labels must be"),
        (np.eye(3, dtype=np.float32), np.array([1, 1, 2]), np.eye(3)[:2], "must match"),
        (2 * np.eye(3, dtype=np.float32), np.array([1, 1, 2]), None, "L2-normalised"),
        (np.full((3, 3), np.nan), np.array([1, 1, 2]), None, "NaN"),
        (np.ones(3), np.array([1, 1, 2]), None, r"\(N, D\)"),
    ],
)
def test_bad_inputs(emb, labels, probe, message: str) -> None:
    with pytest.raises(FacebenchError, match=message):
        evaluate_all_pairs(emb, labels, probe, replicates=0)
