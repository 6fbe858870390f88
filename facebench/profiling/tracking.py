"""Simple IoU tracking of face boxes across video frames, and the identity-consistency figure.

Tracking is greedy: every frame, the (track, detection) pairs are taken in order of
decreasing box IoU, each track and detection at most once, while the IoU is at least
``iou_threshold``. Unmatched detections start new tracks; a track not matched for more
than ``max_missed`` processed frames ends. This is enough to follow the faces of a
talking-head or street clip for a sanity figure; it is not a re-identification tracker.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np


def iou_matrix(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """IoU of every box in ``a`` (n, 4) with every box in ``b`` (m, 4), boxes as x1, y1, x2, y2 -> (n, m)."""
    a = np.asarray(a, dtype=np.float64).reshape(-1, 4)
    b = np.asarray(b, dtype=np.float64).reshape(-1, 4)
    width = np.clip(np.minimum(a[:, None, 2], b[None, :, 2]) - np.maximum(a[:, None, 0], b[None, :, 0]), 0, None)
    height = np.clip(np.minimum(a[:, None, 3], b[None, :, 3]) - np.maximum(a[:, None, 1], b[None, :, 1]), 0, None)
    inter = width * height
    area_a = (a[:, 2] - a[:, 0]) * (a[:, 3] - a[:, 1])
    area_b = (b[:, 2] - b[:, 0]) * (b[:, 3] - b[:, 1])
    union = area_a[:, None] + area_b[None, :] - inter
    return np.divide(inter, union, out=np.zeros_like(inter), where=union > 0)


def greedy_match(iou: np.ndarray, threshold: float) -> list[tuple[int, int]]:
    """(row, column) pairs by decreasing IoU, each row and column used once, IoU >= threshold."""
    rows, cols = np.nonzero(iou >= threshold)
    order = np.argsort(-iou[rows, cols], kind="stable")
    used_rows: set[int] = set()
    used_cols: set[int] = set()
    pairs = []
    for k in order:
        r, c = int(rows[k]), int(cols[k])
        if r not in used_rows and c not in used_cols:
            pairs.append((r, c))
            used_rows.add(r)
            used_cols.add(c)
    return pairs


@dataclass
class _Track:
    track_id: int
    box: np.ndarray
    missed: int = 0


@dataclass
class IouTracker:
    """Give each face box of each frame a track id (0, 1, 2, ... in order of first appearance)."""

    iou_threshold: float = 0.3
    max_missed: int = 5
    _tracks: list[_Track] = field(default_factory=list)
    _next_id: int = 0

    def update(self, boxes: np.ndarray) -> list[int]:
        """Track ids for this frame's boxes (n, 4), in the boxes' order."""
        boxes = np.asarray(boxes, dtype=np.float64).reshape(-1, 4)
        ids = [-1] * len(boxes)
        previous = np.array([t.box for t in self._tracks]).reshape(-1, 4)
        matched_tracks = set()
        for t, d in greedy_match(iou_matrix(previous, boxes), self.iou_threshold):
            track = self._tracks[t]
            track.box, track.missed = boxes[d], 0
            ids[d] = track.track_id
            matched_tracks.add(t)
        for t, track in enumerate(self._tracks):
            if t not in matched_tracks:
                track.missed += 1
        self._tracks = [t for t in self._tracks if t.missed <= self.max_missed]
        for d, track_id in enumerate(ids):
            if track_id < 0:
                ids[d] = self._next_id
                self._tracks.append(_Track(self._next_id, boxes[d]))
                self._next_id += 1
        return ids


def identity_consistency(track_ids: Sequence[int], embeddings: np.ndarray) -> dict[str, float | int]:
    """How well embeddings keep identities apart along tracks.

    ``track_ids[i]`` is the track of face ``i``, faces in time order; ``embeddings`` (n, d).
    - ``track_cos_consecutive``: mean cosine similarity between each face and the track's
      previous face (successive appearances of the same person);
    - ``track_cos_between``: mean cosine similarity over all pairs of faces from different
      tracks (computed exactly from per-track sums, so it costs O(n)).
    A trained model gives the first near 1 and the second much lower; an untrained one
    gives both high. NaN where there is no such pair, or where an embedding is unusable
    (inf, NaN or all zeros, e.g. an untrained deep model overflowing in fp16).
    """
    ids = np.asarray(track_ids, dtype=np.int64)
    if not len(ids):
        return {"tracks": 0, "track_pairs_consecutive": 0, "track_cos_consecutive": float("nan"),
                "track_cos_between": float("nan")}  # fmt: skip
    vectors = np.asarray(embeddings, dtype=np.float64).reshape(len(ids), -1)
    if not (np.isfinite(vectors).all() and np.all(np.any(vectors != 0, axis=1))):
        unit = np.full_like(vectors, np.nan)  # an unusable embedding (inf, NaN, zero) makes the figures NaN
    else:
        unit = vectors / np.linalg.norm(vectors, axis=1, keepdims=True)
    consecutive = []
    last_of: dict[int, int] = {}
    for i, track_id in enumerate(ids.tolist()):
        if track_id in last_of:
            consecutive.append(float(unit[i] @ unit[last_of[track_id]]))
        last_of[track_id] = i
    # sum over ordered pairs (i, j) from different tracks of u_i . u_j = |S|^2 - sum_t |S_t|^2
    total = unit.sum(axis=0)
    same_dot, same_pairs = 0.0, 0
    for track_id in np.unique(ids):
        members = unit[ids == track_id]
        track_sum = members.sum(axis=0)
        same_dot += float(track_sum @ track_sum)
        same_pairs += len(members) ** 2
    between_pairs = len(ids) ** 2 - same_pairs
    return {
        "tracks": len(np.unique(ids)),
        "track_pairs_consecutive": len(consecutive),
        "track_cos_consecutive": float(np.mean(consecutive)) if consecutive else float("nan"),
        "track_cos_between": float((total @ total - same_dot) / between_pairs) if between_pairs else float("nan"),
    }
