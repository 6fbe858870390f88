"""Operating-point verification over every pair of an identity-folder set: FNMR at FMR 1e-2..1e-6 with
thresholds taken exactly on the impostor scores, EER, a DET curve, and intervals from a bootstrap over
identities, as pure numpy functions of L2-normalised embeddings and identity labels.

Every unordered pair of distinct images {i, j}, i < j, is compared once, its score the cosine
``emb[i] . emb[j]`` (with degraded captures ``probe_emb``: ``emb[i] . probe_emb[j]``, the later image a
degraded probe against the clean original of the earlier one). Same label: genuine; else impostor.

The N x N matrix is never held: rows are scored in blocks of a bounded working set, keeping every genuine
score (with its identity), the exact top impostor scores above a running cut-off (with the images of each
pair, which the bootstrap needs) and a fixed-bin histogram of all impostor scores (for the DET curve and
EER). See ``THRESHOLD_RULE``, ``RESOLUTION_RULE``, ``EER_RULE`` and ``BOOTSTRAP_RULE``.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass
from fractions import Fraction

import numpy as np

from facebench.errors import FacebenchError

PROTOCOL = "all-pairs"
FMR_TARGETS = (1e-2, 1e-3, 1e-4, 1e-5, 1e-6)
THRESHOLD_RULE = (
    "A comparison is accepted when its cosine score >= t. At FMR f over N impostor scores, at most "
    "k = floor(f x N) impostors may be accepted: t is the smallest impostor score value with at most k "
    "impostor scores >= t (the next float32 above the (k+1)-th highest impostor score when no impostor "
    "value qualifies). Ties at t are never split: all impostors equal to t are accepted, and when accepting "
    "them all would exceed k, t moves up to the next impostor value, so the achieved FMR is <= f. "
    "FNMR = fraction of genuine scores < t."
)
RESOLUTION_RULE = (
    "At least 1/FMR impostor comparisons are needed for an FMR target (else n/a); 10/FMR are recommended "
    "(field well_resolved)."
)
EER_RULE = (
    "EER on the impostor histogram's bin edges (bins of width 2/n_bins on [-1, 1]), genuine scores binned "
    "the same way: FMR and FNMR at each edge, linear between the two edges that bracket their crossing."
)
BOOTSTRAP_RULE = (
    "Identities are resampled with replacement; an identity drawn c times weighs its genuine pairs by c and "
    "its impostor pairs with an identity drawn c' times by c x c'. Each replicate recomputes the threshold "
    "(the threshold rule on the weighted impostors) and the weighted FNMR; the interval is the percentile "
    "interval of the replicates' FNMR."
)
DEFAULT_BLOCK_BYTES = 256 * 2**20  # working set of one block of scores
DEFAULT_MAX_KEPT = 8_000_000  # impostor scores kept exactly, at most (12 bytes each; see memory_bound_bytes)
DEFAULT_BINS = 20_000  # impostor histogram on [-1, 1]: bins of width 1e-4 cosine
KEPT_MARGIN = 2.0  # keep 2 x max FMR x N impostors, so bootstrap replicates' tails stay inside the kept ones
BYTES_PER_BLOCK_SCORE = 24  # buffers: score and scaled score float32, bin intp, mask; a partition copy, the j <= i mask
BYTES_PER_KEPT = 12  # score float32 + two int32 image indices
BOOTSTRAP_CHUNK = 250  # replicates drawn and walked together
BOOTSTRAP_CELLS = 2_000_000  # replicate x kept-score cells computed at once (two int16 buffers, 8 MB)
_FLOOR = np.float32(-2.0)  # below every cosine: the cut-off while every impostor is kept
_SENTINEL = np.float32(-3.0)  # written over genuine and lower-triangle cells of a block


def rate_key(rate: float) -> str:
    """Key of an FMR/FPIR target: 1e-3 -> '1e-3'."""
    mantissa, exponent = f"{rate:.0e}".split("e")
    return f"{mantissa}e{int(exponent)}"


def allowed_count(rate: float, n: int | np.ndarray) -> int | np.ndarray:
    """floor(rate x n) in exact decimal arithmetic (0.01 x 300 is 3, not 3.0000000000000004 floored)."""
    exact = Fraction(repr(rate))
    return (n * exact.numerator) // exact.denominator


def exact_threshold(descending: np.ndarray, allowed: int) -> np.float32:
    """``THRESHOLD_RULE`` on scores sorted descending (at least ``allowed + 1`` of them, the highest ones)."""
    pivot = descending[allowed]
    above = int(np.searchsorted(-descending, -pivot, side="left"))  # scores strictly above the pivot
    return descending[above - 1] if above else np.nextafter(pivot, np.float32(np.inf))


def score_bins(scores: np.ndarray, n_bins: int, scratch: np.ndarray | None = None,
               out: np.ndarray | None = None) -> np.ndarray:
    """Bin index per score: bin k holds [-1 + 2k/n_bins, -1 + 2(k+1)/n_bins); outside [-1, 1] clips to the ends.

    ``scratch`` (float32) and ``out`` (intp), shaped like ``scores``, spare a block loop the allocations (and
    page faults, which cost more than the arithmetic).
    """
    half = np.float32(n_bins / 2)
    scaled = np.multiply(scores, half, out=scratch, dtype=np.float32)
    scaled += half
    np.clip(scaled, 0, n_bins - 1, out=scaled)
    if out is None:
        return scaled.astype(np.intp)
    np.copyto(out, scaled, casting="unsafe")
    return out


def check_embeddings(
    emb: np.ndarray, labels: np.ndarray, probe_emb: np.ndarray | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Validated (emb, probe, identity index per image, images per identity); probe is emb when not given."""
    emb = np.ascontiguousarray(emb, dtype=np.float32)
    labels = np.asarray(labels)
    if emb.ndim != 2 or emb.shape[0] == 0:
        raise FacebenchError(f"embeddings must be a non-empty (N, D) array, got shape {emb.shape}")
    if labels.shape != (emb.shape[0],) or not np.issubdtype(labels.dtype, np.integer):
        raise FacebenchError(
            f"labels must be N = {emb.shape[0]} integers, one per embedding; got {labels.dtype} {labels.shape}"
        )
    probe = emb if probe_emb is None else np.ascontiguousarray(probe_emb, dtype=np.float32)
    if probe.shape != emb.shape:
        raise FacebenchError(f"probe embeddings {probe.shape} must match the embeddings {emb.shape}")
    for name, array in (("embeddings", emb), ("probe embeddings", probe)):
        if not np.isfinite(array).all():
            raise FacebenchError(f"the {name} contain NaN or infinite values; the model output is broken")
        error = np.abs(np.linalg.norm(array, axis=1) - 1)
        if error.max() > 1e-3:
            row = int(np.argmax(error))
            raise FacebenchError(f"the {name} must be L2-normalised; row {row}'s norm is off by {error[row]:.3g}")
    _, identity, sizes = np.unique(labels, return_inverse=True, return_counts=True)
    return emb, probe, identity.astype(np.intp), sizes.astype(np.int64)


def genuine_pairs(identity: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Image indices (i, j), i < j, of every same-identity pair, ordered by i then j."""
    order = np.argsort(identity, kind="stable")
    sizes = np.bincount(identity)
    starts = np.r_[0, np.cumsum(sizes)[:-1]]
    firsts, seconds = [], []
    for start, size in zip(starts[sizes > 1], sizes[sizes > 1], strict=True):
        a, b = np.triu_indices(int(size), k=1)
        members = order[start : start + size]  # ascending image index (stable sort)
        firsts.append(members[a])
        seconds.append(members[b])
    i, j = np.concatenate(firsts), np.concatenate(seconds)
    by_first = np.lexsort((j, i))
    return i[by_first], j[by_first]


def row_blocks(n: int, block_bytes: int) -> list[tuple[int, int]]:
    """Row ranges [i0, i1) whose block against columns i0..n-1 fits ``block_bytes`` (at least one row each)."""
    blocks, i0 = [], 0
    while i0 < n:
        rows = max(1, block_bytes // (BYTES_PER_BLOCK_SCORE * (n - i0)))
        blocks.append((i0, min(n, i0 + rows)))
        i0 = blocks[-1][1]
    return blocks


def kept_size(n_impostor: int, max_fmr: float, max_kept: int) -> int:
    """How many top impostor scores to keep: KEPT_MARGIN x max_fmr x n_impostor (+1), capped at max_kept."""
    return max(1, min(max_kept, math.ceil(KEPT_MARGIN * max_fmr * n_impostor) + 1))


def memory_bound_bytes(n: int, n_genuine: int, keep: int, block_bytes: int, n_bins: int = DEFAULT_BINS) -> int:
    """Upper bound of ``score_pairs``'s working memory beyond its input: the block buffers (one block holds at
    least one row), a block's survivors (at most 2 x keep, 52 bytes each while indexed), the kept buffer (at
    most 4 x keep, copied and partitioned while merging), the genuine pairs and the histogram."""
    cells = max(block_bytes // BYTES_PER_BLOCK_SCORE, n)
    survivors = 2 * keep * 52
    kept = 4 * keep * (2 * BYTES_PER_KEPT + 5)
    return cells * BYTES_PER_BLOCK_SCORE + survivors + kept + n_genuine * 24 + n_bins * 8


@dataclass(frozen=True)
class PairScores:
    """What ``score_pairs`` keeps of all N(N-1)/2 comparisons."""

    identity: np.ndarray  # (N,) identity index per image
    sizes: np.ndarray  # (n_identities,) images per identity
    genuine: np.ndarray  # (n_genuine,) float32, every genuine score
    genuine_identity: np.ndarray  # (n_genuine,) identity of each genuine pair
    impostor: np.ndarray  # (n_kept,) float32, the top impostor scores, descending
    impostor_pairs: np.ndarray  # (n_kept, 2) int32 image indices (i, j) of each
    cutoff: float  # every impostor scoring above it is kept (-2: all are)
    histogram: np.ndarray  # (n_bins,) int64 counts of all impostor scores, see ``score_bins``
    n_impostor: int


def _merge(scores: list[np.ndarray], pairs: list[np.ndarray], keep: int, cutoff: np.float32) -> tuple:
    """Concatenate the buffered survivors and, past ``keep``, drop all at or below the keep-th highest."""
    score, pair = np.concatenate(scores), np.concatenate(pairs)
    if score.size > keep:
        cutoff = np.partition(score, score.size - keep)[score.size - keep]
        above = score > cutoff
        score, pair = score[above], pair[above]
    return [score], [pair], cutoff


def score_pairs(
    emb: np.ndarray,
    labels: np.ndarray,
    probe_emb: np.ndarray | None = None,
    *,
    max_fmr: float = max(FMR_TARGETS),
    max_kept: int = DEFAULT_MAX_KEPT,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
    n_bins: int = DEFAULT_BINS,
) -> PairScores:
    """Score every unordered pair once in row blocks: all genuine scores, the exact top impostors, a histogram.

    Survivors of each block are the cells above the running cut-off (one mask); once more than twice the
    kept size are buffered, ``np.partition`` cuts them to the kept size and raises the cut-off (a block with
    more than twice the kept size of survivors, as the first one, sets it to its own keep-th highest score).
    Every impostor above the final cut-off is kept: each one dropped was at or below the cut-off of its time.
    """
    emb, probe, identity, sizes = check_embeddings(emb, labels, probe_emb)
    if sizes.size < 2:
        raise FacebenchError(f"all {emb.shape[0]} images share one identity; impostor pairs need two or more")
    if (sizes < 2).all():
        raise FacebenchError(f"none of the {sizes.size} identities has two or more images: no genuine pairs")
    n = emb.shape[0]
    gi, gj = genuine_pairs(identity)
    n_impostor = n * (n - 1) // 2 - gi.size
    keep = kept_size(n_impostor, max_fmr, max_kept)
    cutoff, kept_scores, kept_pairs, buffered = _FLOOR, [], [], 0
    genuine = np.empty(gi.size, dtype=np.float32)
    histogram = np.zeros(n_bins, dtype=np.int64)
    blocks = row_blocks(n, block_bytes)
    cells = max((i1 - i0) * (n - i0) for i0, i1 in blocks)
    buffers = np.empty(cells, np.float32), np.empty(cells, np.float32), np.empty(cells, np.intp), np.empty(cells, bool)
    for i0, i1 in blocks:
        rows, cols = i1 - i0, n - i0
        block, scratch, bins, mask = (buffer[: rows * cols].reshape(rows, cols) for buffer in buffers)
        np.matmul(emb[i0:i1], probe[i0:].T, out=block)  # block[r, c] = score of images (i0 + r, i0 + c)
        lo, hi = np.searchsorted(gi, (i0, i1))
        r, c = gi[lo:hi] - i0, gj[lo:hi] - i0
        genuine[lo:hi] = block[r, c]
        block[r, c] = _SENTINEL
        block[:, :rows][np.tri(rows, dtype=bool)] = _SENTINEL  # j <= i: not a pair, or scored in the other order
        histogram += np.bincount(score_bins(block, n_bins, scratch, bins).ravel(), minlength=n_bins)
        histogram[0] -= r.size + rows * (rows + 1) // 2
        np.greater(block, cutoff, out=mask)
        if np.count_nonzero(mask) > 2 * keep:  # this block alone outnumbers the kept (the first one does): cut it
            cutoff = np.partition(block.ravel(), block.size - keep)[block.size - keep]
            np.greater(block, cutoff, out=mask)
        survivors = np.flatnonzero(mask)
        rr, cc = np.divmod(survivors, cols)
        kept_scores.append(block.ravel()[survivors])
        kept_pairs.append(np.stack((rr + i0, cc + i0), axis=1).astype(np.int32))
        buffered += survivors.size
        if buffered > 2 * keep:
            kept_scores, kept_pairs, cutoff = _merge(kept_scores, kept_pairs, keep, cutoff)
            buffered = kept_scores[0].size
    kept_scores, kept_pairs, cutoff = _merge(kept_scores, kept_pairs, keep, cutoff)
    order = np.argsort(-kept_scores[0], kind="stable")
    return PairScores(
        identity=identity,
        sizes=sizes,
        genuine=genuine,
        genuine_identity=identity[gi],
        impostor=kept_scores[0][order],
        impostor_pairs=kept_pairs[0][order],
        cutoff=float(cutoff),
        histogram=histogram,
        n_impostor=n_impostor,
    )


def impostor_weight(counts: np.ndarray, sizes: np.ndarray) -> np.ndarray:
    """Total impostor weight per replicate, sum over identities a < b of c_a c_b n_a n_b
    = ((sum_a c_a n_a)^2 - sum_a c_a^2 n_a^2) / 2; counts (R, n_identities)."""
    total = counts @ sizes
    return (total * total - (counts * counts) @ (sizes * sizes)) // 2


def _last_positive_before(counts: np.ndarray, ia: np.ndarray, ib: np.ndarray, rows: np.ndarray,
                          ends: np.ndarray) -> np.ndarray:
    """Per (replicate row, end): the last kept index below ``end`` whose pair weighs > 0 there, else -1."""
    found = np.full(rows.size, -1)
    todo, width = np.flatnonzero(ends > 0), 64
    while todo.size:
        positions = ends[todo, None] - 1 - np.arange(width)
        valid = positions >= 0
        at = np.maximum(positions, 0)
        who = rows[todo, None]
        positive = valid & (counts[who, ia[at]] * counts[who, ib[at]] > 0)
        hit = positive.any(axis=1)
        found[todo[hit]] = positions[hit, positive[hit].argmax(axis=1)]
        todo, width = todo[~hit & valid[:, -1]], 2 * width  # not found and not at the start yet: look further
    return found


def replicate_operating_points(
    scores: PairScores, counts: np.ndarray, fmr_targets: tuple[float, ...] = FMR_TARGETS
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Threshold, FNMR and coverage per replicate and target for identity draw counts (R, n_identities).

    The kept impostors are walked once in descending order, in segments, with each replicate's running
    weighted count (a segment's cumulative sums only for the replicates whose crossing it holds); a
    replicate is covered at a target when its (k+1)-th weighted impostor lies among the kept ones (then its
    threshold is exact). Uncovered cells, and replicates without genuine weight, hold NaN.
    """
    counts = np.asarray(counts, dtype=np.int32)
    n_rep, n_targets = counts.shape[0], len(fmr_targets)
    desc = scores.impostor
    ia, ib = scores.identity[scores.impostor_pairs[:, 0]], scores.identity[scores.impostor_pairs[:, 1]]
    new_value = np.r_[True, desc[1:] != desc[:-1]]
    group_start = np.maximum.accumulate(np.where(new_value, np.arange(desc.size), 0))
    weight = impostor_weight(counts.astype(np.int64), scores.sizes)
    allowed = np.stack([allowed_count(rate, weight) for rate in fmr_targets], axis=1)  # (R, T)
    crossing = np.full((n_rep, n_targets), -1)  # kept index of each replicate's (k+1)-th weighted impostor
    small = counts.max(initial=0) <= 181  # every product c_a x c_b fits int16 (a count above 181 never happens)
    by_identity = np.ascontiguousarray(counts.T, dtype=np.int16 if small else np.int64)  # rows gather fast
    segment = max(1, BOOTSTRAP_CELLS // n_rep)
    first, second = (np.empty((segment, n_rep), by_identity.dtype) for _ in range(2))  # reused, no page faults
    running = np.zeros(n_rep, dtype=np.int64)
    for s0 in range(0, desc.size, segment):
        size = min(segment, desc.size - s0)
        weights = np.take(by_identity, ia[s0 : s0 + size], axis=0, out=first[:size], mode="clip")
        weights *= np.take(by_identity, ib[s0 : s0 + size], axis=0, out=second[:size], mode="clip")
        total = running + weights.sum(axis=0, dtype=np.int64)
        for t in range(n_targets):
            rows = np.flatnonzero((crossing[:, t] < 0) & (total > allowed[:, t]))
            if rows.size:  # the (k+1)-th weighted impostor of these replicates lies in this segment
                cumulative = np.cumsum(weights[:, rows].T, axis=1, dtype=np.int64) + running[rows, None]
                crossing[rows, t] = s0 + np.count_nonzero(cumulative <= allowed[rows, t, None], axis=1)
        running = total
        if (crossing >= 0).all():
            break
    covered = crossing >= 0
    rows, cols = np.nonzero(covered)
    pivot = crossing[rows, cols]
    previous = _last_positive_before(counts, ia, ib, rows, group_start[pivot])
    thresholds = np.full((n_rep, n_targets), np.nan, dtype=np.float32)
    thresholds[rows, cols] = np.where(previous >= 0, desc[np.maximum(previous, 0)],
                                      np.nextafter(desc[pivot], np.float32(np.inf)))
    fnmr = weighted_fnmr(scores, counts, thresholds)
    ok = covered & ~np.isnan(fnmr)
    return np.where(ok, thresholds, np.nan), np.where(ok, fnmr, np.nan), covered


def weighted_fnmr(scores: PairScores, counts: np.ndarray, thresholds: np.ndarray) -> np.ndarray:
    """Per replicate and target, the weight of the genuine pairs below each threshold over the replicate's genuine
    weight (an identity drawn c times weighs its genuine pairs by c); NaN where the threshold is NaN or the
    replicate drew no genuine pair."""
    n_rep = counts.shape[0]
    order = np.argsort(scores.genuine, kind="stable")
    genuine_identity = scores.genuine_identity[order]
    positions = np.searchsorted(scores.genuine[order], thresholds, side="left")  # genuine pairs below each
    below = np.zeros(thresholds.shape, dtype=np.int64)  # their weight: per replicate, a running sum
    running = np.zeros(n_rep, dtype=np.int64)
    segment = max(1, BOOTSTRAP_CELLS // n_rep)
    for g0 in range(0, genuine_identity.size, segment):
        part = np.cumsum(counts[:, genuine_identity[g0 : g0 + segment]], axis=1, dtype=np.int64)
        r, t = np.nonzero((positions > g0) & (positions <= g0 + part.shape[1]))
        below[r, t] = running[r] + part[r, positions[r, t] - 1 - g0]
        running += part[:, -1]
    genuine_weight = counts.astype(np.int64) @ (scores.sizes * (scores.sizes - 1) // 2)
    fnmr = below / np.maximum(genuine_weight, 1)[:, None]
    return np.where(np.isnan(thresholds) | (genuine_weight[:, None] == 0), np.nan, fnmr)


@dataclass(frozen=True)
class OperatingPoint:
    """FNMR at one FMR target; ``None`` where it is n/a (``RESOLUTION_RULE``)."""

    fmr: float
    resolvable: bool  # n_impostor >= 1/fmr
    well_resolved: bool  # n_impostor >= 10/fmr
    threshold: float | None  # cosine; accept score >= threshold (THRESHOLD_RULE)
    threshold_from: str | None  # "impostors" (exact, from the kept scores) or "histogram" (kept too few)
    fnmr: float | None  # fraction of genuine scores < threshold
    lo: float | None  # percentile interval of the bootstrap; None without one, from the histogram or uncovered
    hi: float | None
    uncovered: int  # bootstrap replicates whose threshold fell below the kept impostors (0 without a bootstrap)


@dataclass(frozen=True)
class BootstrapSettings:
    """How the intervals were drawn (``BOOTSTRAP_RULE``)."""

    replicates: int
    seed: int
    level: float
    unit: str = "identities"


@dataclass(frozen=True)
class AllPairsResult:
    """Every all-pairs verification number for one set."""

    n_images: int
    n_identities: int
    n_genuine: int
    n_impostor: int
    n_kept: int  # impostor scores kept exactly
    kept_cutoff: float  # every impostor above it was kept (-2: all were)
    points: dict[str, OperatingPoint]  # keys "1e-2".."1e-6"
    eer: float  # EER_RULE
    det_threshold: np.ndarray  # bin edges, ascending
    det_fmr: np.ndarray  # fraction of impostors >= edge
    det_fnmr: np.ndarray  # fraction of genuine scores below edge (binned)
    bootstrap: BootstrapSettings | None

    def to_row(self) -> dict:
        """Flat report row: protocol, counts, fnmr/threshold/interval per FMR, eer."""
        row = {"protocol": PROTOCOL, "n_images": self.n_images, "n_identities": self.n_identities,
               "n_genuine": self.n_genuine, "n_impostor": self.n_impostor}
        for key, point in self.points.items():
            row[f"fnmr_fmr_{key}"] = point.fnmr
            row[f"threshold_fmr_{key}"] = point.threshold
            row[f"fnmr_fmr_{key}_lo"] = point.lo
            row[f"fnmr_fmr_{key}_hi"] = point.hi
        row["eer"] = self.eer
        return row

    def to_dict(self) -> dict:
        """JSON-ready dict (DET arrays as lists)."""
        out = asdict(self)
        for name in ("det_threshold", "det_fmr", "det_fnmr"):
            out[name] = getattr(self, name).tolist()
        return out


def det_curve(scores: PairScores) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(edge, FMR, FNMR) at every histogram bin edge from the last with FMR 1 to the first with FNMR 1."""
    n_bins = scores.histogram.size
    edges = (2 * np.arange(n_bins) - n_bins) / n_bins
    fmr = np.cumsum(scores.histogram[::-1])[::-1] / scores.n_impostor  # impostors in bins >= m
    genuine_bins = np.bincount(score_bins(scores.genuine, n_bins), minlength=n_bins)
    fnmr = np.r_[0, np.cumsum(genuine_bins)[:-1]] / scores.genuine.size  # genuine in bins < m
    first = max(0, int(np.count_nonzero(fmr >= 1)) - 1)
    last = min(n_bins - 1, int(np.count_nonzero(fnmr < 1)))
    return edges[first : last + 1], fmr[first : last + 1], fnmr[first : last + 1]


def equal_error_rate(fmr: np.ndarray, fnmr: np.ndarray) -> float:
    """EER from DET points with FMR falling and FNMR rising: linear between the points bracketing the crossing
    (past the last point, the threshold above every score: FMR 0, FNMR 1)."""
    fmr, fnmr = np.r_[fmr, 0.0], np.r_[fnmr, 1.0]
    i = int(np.argmax(fmr <= fnmr))
    if i == 0:
        return float(fmr[0])
    d0, d1 = fmr[i - 1] - fnmr[i - 1], fmr[i] - fnmr[i]
    weight = d0 / (d0 - d1)
    return float(fmr[i - 1] + weight * (fmr[i] - fmr[i - 1]))


def _point_estimate(scores: PairScores, rate: float) -> tuple[float | None, str | None, float | None]:
    """(threshold, source, fnmr) at one FMR target, or Nones when the impostors can't resolve it."""
    allowed = allowed_count(rate, scores.n_impostor)
    if allowed < 1:
        return None, None, None
    if allowed < scores.impostor.size:
        threshold = exact_threshold(scores.impostor, allowed)
        return float(threshold), "impostors", float(np.mean(scores.genuine < threshold))
    n_bins = scores.histogram.size  # the same rule on scores quantised to the histogram's bins
    at_or_above = np.cumsum(scores.histogram[::-1])[::-1]
    edge = int(np.count_nonzero(at_or_above > allowed))
    fnmr = float(np.mean(score_bins(scores.genuine, n_bins) < edge))
    return (2 * edge - n_bins) / n_bins, "histogram", fnmr


def operating_points(
    scores: PairScores,
    *,
    fmr_targets: tuple[float, ...] = FMR_TARGETS,
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
) -> AllPairsResult:
    """FNMR and threshold per FMR target, EER, DET points and (``replicates`` > 0) bootstrap intervals."""
    estimates = {rate: _point_estimate(scores, rate) for rate in fmr_targets}
    intervals: dict[float, tuple[float | None, float | None, int]] = {rate: (None, None, 0) for rate in fmr_targets}
    exact = tuple(rate for rate in fmr_targets if estimates[rate][1] == "impostors")  # the others get no interval
    if replicates > 0 and exact:
        rng = np.random.default_rng(seed)
        n_id = scores.sizes.size
        fnmr = np.empty((replicates, len(exact)))
        covered = np.empty((replicates, len(exact)), dtype=bool)
        for r0 in range(0, replicates, BOOTSTRAP_CHUNK):  # fixed chunks: the draws depend on the seed alone
            draws = rng.integers(0, n_id, size=(min(BOOTSTRAP_CHUNK, replicates - r0), n_id), dtype=np.int32)
            counts = np.bincount((draws + n_id * np.arange(draws.shape[0])[:, None]).ravel(), minlength=draws.size)
            _, fnmr[r0 : r0 + draws.shape[0]], covered[r0 : r0 + draws.shape[0]] = replicate_operating_points(
                scores, counts.reshape(draws.shape), exact)
        tail = 100 * (1 - level) / 2
        for t, rate in enumerate(exact):
            uncovered = int(np.count_nonzero(~covered[:, t]))
            if uncovered:
                intervals[rate] = (None, None, uncovered)
            else:
                lo, hi = np.nanpercentile(fnmr[:, t], (tail, 100 - tail))
                intervals[rate] = (float(lo), float(hi), 0)
    points = {}
    for rate in fmr_targets:
        threshold, source, fnmr_value = estimates[rate]
        lo, hi, uncovered = intervals[rate]
        points[rate_key(rate)] = OperatingPoint(
            fmr=rate, resolvable=source is not None, well_resolved=scores.n_impostor * rate >= 10,
            threshold=threshold, threshold_from=source, fnmr=fnmr_value, lo=lo, hi=hi, uncovered=uncovered,
        )
    edges, det_fmr, det_fnmr = det_curve(scores)
    return AllPairsResult(
        n_images=int(scores.identity.size),
        n_identities=int(scores.sizes.size),
        n_genuine=int(scores.genuine.size),
        n_impostor=scores.n_impostor,
        n_kept=int(scores.impostor.size),
        kept_cutoff=scores.cutoff,
        points=points,
        eer=equal_error_rate(det_fmr, det_fnmr),
        det_threshold=edges,
        det_fmr=det_fmr,
        det_fnmr=det_fnmr,
        bootstrap=BootstrapSettings(replicates, seed, level) if replicates > 0 else None,
    )


def evaluate_all_pairs(
    emb: np.ndarray,
    labels: np.ndarray,
    probe_emb: np.ndarray | None = None,
    *,
    fmr_targets: tuple[float, ...] = FMR_TARGETS,
    replicates: int = 1000,
    seed: int = 0,
    level: float = 0.95,
    max_kept: int = DEFAULT_MAX_KEPT,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> AllPairsResult:
    """All-pairs operating points of one set: ``score_pairs`` then ``operating_points``."""
    scores = score_pairs(emb, labels, probe_emb, max_fmr=max(fmr_targets), max_kept=max_kept, block_bytes=block_bytes)
    return operating_points(scores, fmr_targets=fmr_targets, replicates=replicates, seed=seed, level=level)
