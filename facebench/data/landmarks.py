"""Per-detector landmark corrections: five points that mean what MTCNN's mean.

The pretrained embedders were trained on MTCNN-style crops, and every detector's five points
go through the same similarity warp onto the ArcFace template (facebench.data.align). YuNet's
and RetinaFace's points are placed systematically elsewhere than MTCNN's (e.g. the mouth
corners and nose tip differ in how far down the face they sit), so the crops differ and the
embedder loses accuracy. The correction moves each point by a fixed offset expressed in the
face's own template frame:

    M     = the similarity taking the detector's five points p onto the ArcFace template
    p'    = p + A^-1 d        (A = M's 2x2 linear part, d = OFFSETS_112[detector], 5 x 2)

so that on average the corrected points sit where MTCNN puts them on the same face.

How d was fitted (benchmarks/fit_landmarks.py refits and prints these numbers): on CelebA
training images (../shared/data/celeba, never LFW: LFW is the evaluation set), each image was
detected by MTCNN and by the detector; where both found the main face with centres within 10 %
of its box, M was fitted from the detector's points and d_i = M(q) - M(p), q = MTCNN's points,
in 112 px template coordinates; d = the per-coordinate median of d_i over the fit half of those images, made left-right
symmetric (averaged with its mirror image: x negated, left and right swapped).
The fitting images, their count and the residual before / after are recorded in
reports/detectors/landmark_fit.json.
"""

from __future__ import annotations

import numpy as np

# Template-pixel offsets (x, y) per point: left eye, right eye, nose, left mouth, right mouth.
# Fitted by benchmarks/fit_landmarks.py (see the module docstring); MTCNN is the reference (no offset).
# 2000 seeded CelebA images (seed 0), fit half 978 (YuNet) / 983 (RetinaFace) matched faces.
OFFSETS_112: dict[str, np.ndarray] = {
    "yunet": np.array([[0.379, -0.718], [-0.379, -0.718], [0.000, 0.932], [-0.454, 1.070], [0.454, 1.070]], dtype=np.float32),
    "retinaface": np.array([[-0.518, -0.398], [0.518, -0.398], [0.000, -0.322], [-0.430, 1.025], [0.430, 1.025]],
                           dtype=np.float32),
}


def correct_landmarks(detector: str, landmarks: np.ndarray) -> np.ndarray:
    """A face's five points (5, 2) moved by the detector's fitted offsets; unchanged without one
    or when the points are degenerate (no similarity to the template)."""
    offsets = OFFSETS_112.get(detector)
    if offsets is None or not np.any(offsets):
        return landmarks
    return shift_in_template_frame(landmarks, offsets)


def shift_in_template_frame(landmarks: np.ndarray, offsets_112: np.ndarray) -> np.ndarray:
    """Points moved by offsets given in the template frame of their own similarity warp."""
    from facebench.data.align import similarity_to_template

    matrix = similarity_to_template(landmarks)
    if matrix is None:
        return landmarks
    linear = matrix[:, :2].astype(np.float64)
    shift = np.linalg.solve(linear, np.asarray(offsets_112, dtype=np.float64).T).T
    return (np.asarray(landmarks, dtype=np.float64) + shift).astype(np.float32)
