"""1:N identification on an identity-folder set: closed-set rank-1 and rank-5 rates and open-set FNIR at
FPIR 1e-2 and 1e-3, as pure numpy functions of L2-normalised embeddings and identity labels.

Searches are scored against the gallery in blocks of a bounded working set (``DEFAULT_BLOCK_BYTES``);
the rules are ``GALLERY_RULE``, ``RANK_RULE`` and ``OPEN_SET_RULE``.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from facebench.errors import FacebenchError
from facebench.eval.operating_points import allowed_count, check_embeddings, exact_threshold, rate_key

FPIR_TARGETS = (1e-2, 1e-3)
GALLERY_RULE = (
    "Every identity with two or more images enrols its first image (in the given order: sorted file names) "
    "in the gallery; its other images are mated searches. Images of identities with exactly one image are "
    "non-mated searches (not enrolled). Searches use the degraded probe embedding when there is one; the "
    "gallery stays clean. Score = cosine similarity."
)
RANK_RULE = (
    "A mated search's rank = 1 + the number of other gallery entries scoring >= its mate's score (ties rank "
    "ahead of the mate); rank-k rate = fraction of mated searches with rank <= k."
)
OPEN_SET_RULE = (
    "At FPIR f over M non-mated searches, t is the threshold rule of all-pairs verification on their top "
    "gallery scores (accept a top score >= t; at most floor(f x M) accepted; ties never split). FNIR = "
    "fraction of mated searches not at rank 1 with mate score >= t. n/a with fewer than 1/FPIR non-mated "
    "searches."
)
DEFAULT_BLOCK_BYTES = 128 * 2**20
BYTES_PER_SCORE = 16  # score float32, a comparison mask, and slack


@dataclass(frozen=True)
class IdentificationResult:
    """Identification numbers of one set; ``None`` where there are too few non-mated searches."""

    n_gallery: int
    n_mated: int
    n_nonmated: int
    rank1: float
    rank5: float
    fnir: dict[str, float | None]  # keys "1e-2", "1e-3"
    threshold: dict[str, float | None]  # cosine, accept a top score >= threshold

    def to_row(self) -> dict:
        """Flat report row."""
        row = {"rank1": self.rank1, "rank5": self.rank5}
        row.update({f"fnir_fpir_{key}": value for key, value in self.fnir.items()})
        row.update({"n_gallery": self.n_gallery, "n_mated": self.n_mated, "n_nonmated": self.n_nonmated})
        return row

    def to_dict(self) -> dict:
        """JSON-ready dict."""
        return asdict(self)


def split_gallery(identity: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(gallery image per identity with >= 2 images, mated search images, non-mated search images), by
    ``GALLERY_RULE``; the gallery is in identity order."""
    sizes = np.bincount(identity)
    first = np.full(sizes.size, -1)
    first[identity[::-1]] = np.arange(identity.size)[::-1]  # lowest index of each identity
    enrolled = np.flatnonzero(sizes >= 2)
    gallery = first[enrolled]
    is_gallery = np.zeros(identity.size, dtype=bool)
    is_gallery[gallery] = True
    mated = np.flatnonzero(~is_gallery & (sizes[identity] >= 2))
    return gallery, mated, np.flatnonzero(sizes[identity] == 1)


def search(
    gallery: np.ndarray, probes: np.ndarray, mates: np.ndarray | None, block_bytes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per search: (top gallery score, mate score, mate rank by ``RANK_RULE``); the last two only where
    ``mates`` (the gallery column of each search's mate) is given, else empty."""
    rows = max(1, block_bytes // (BYTES_PER_SCORE * gallery.shape[0]))
    n = probes.shape[0]
    top = np.empty(n, dtype=np.float32)
    mate_score = np.empty(n if mates is not None else 0, dtype=np.float32)
    rank = np.empty(n if mates is not None else 0, dtype=np.int64)
    for r0 in range(0, n, rows):
        scores = probes[r0 : r0 + rows] @ gallery.T
        top[r0 : r0 + rows] = scores.max(axis=1)
        if mates is not None:
            mate_score[r0 : r0 + rows] = scores[np.arange(scores.shape[0]), mates[r0 : r0 + rows]]
            # the mate counts itself, so rank = 1 + the other entries scoring >= the mate
            rank[r0 : r0 + rows] = np.count_nonzero(scores >= mate_score[r0 : r0 + rows, None], axis=1)
    return top, mate_score, rank


def evaluate_identification(
    emb: np.ndarray,
    labels: np.ndarray,
    probe_emb: np.ndarray | None = None,
    *,
    fpir_targets: tuple[float, ...] = FPIR_TARGETS,
    block_bytes: int = DEFAULT_BLOCK_BYTES,
) -> IdentificationResult:
    """Rank-1/5 over the mated searches and FNIR at each FPIR target, by ``GALLERY_RULE``, ``RANK_RULE`` and
    ``OPEN_SET_RULE``."""
    emb, probe, identity, sizes = check_embeddings(emb, labels, probe_emb)
    if (sizes < 2).all():
        raise FacebenchError(
            f"none of the {sizes.size} identities has two or more images: nothing to enrol and search for"
        )
    gallery, mated, nonmated = split_gallery(identity)
    column = np.full(sizes.size, -1)
    column[identity[gallery]] = np.arange(gallery.size)
    gallery_emb = emb[gallery]
    _, mate_score, rank = search(gallery_emb, probe[mated], column[identity[mated]], block_bytes)
    nonmated_top, _, _ = search(gallery_emb, probe[nonmated], None, block_bytes)
    descending = np.sort(nonmated_top)[::-1]
    fnir, thresholds = {}, {}
    for rate in fpir_targets:
        allowed = allowed_count(rate, nonmated.size)
        key = rate_key(rate)
        if allowed < 1:
            fnir[key], thresholds[key] = None, None
            continue
        threshold = exact_threshold(descending, allowed)
        hit = (rank == 1) & (mate_score >= threshold)
        fnir[key], thresholds[key] = float(1 - hit.mean()), float(threshold)
    return IdentificationResult(
        n_gallery=int(gallery.size),
        n_mated=int(mated.size),
        n_nonmated=int(nonmated.size),
        rank1=float(np.mean(rank <= 1)),
        rank5=float(np.mean(rank <= 5)),
        fnir=fnir,
        threshold=thresholds,
    )
