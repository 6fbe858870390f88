"""Per-detector landmark corrections: five points that mean what MTCNN's mean.

The pretrained embedders were trained on MTCNN-style crops, and every detector's five points
go through the same similarity warp onto the ArcFace template (facebench.data.align). YuNet's
and RetinaFace's points sit systematically elsewhere than MTCNN's on the same face (YuNet's
eyes higher and wider apart, its nose and mouth higher; how much depends on the head pose),
so the crops differ and the embedder loses accuracy. The correction moves the points by an
offset predicted in the face's own template frame:

    M  = the similarity taking the detector's five points p onto the ArcFace template T
    x  = M(p) - T, the 10 coordinates of the warped points relative to the template (pose, shape)
    d  = c + x @ B   (c: 5 x 2 mean offset, B: 10 x 10 linear term), template pixels
    p' = p + A^-1 d  (A = M's 2x2 linear part)

so that M(p') lies where M puts MTCNN's points q of the same face, on average and as the pose
changes. The constant correction (OFFSETS_112) is d = a fixed offset per point.

How c and B were fitted (benchmarks/fit_landmarks.py refits them and prints these literals): on
CelebA training images (../shared/data/celeba, 2000 drawn with seed 0; never LFW, the evaluation
set), each image was detected by MTCNN and by the detector; where both found the main face
(centres within 10 % of MTCNN's box width; 1956 and 1966 faces), the target M(q) - M(p) on the
fit half (every other face): constant = its per-coordinate median averaged with its mirror
image; linear = least squares (ridge 1.0) of it on [1, M(p) - T] over those faces and their
mirror images (x negated, left and right swapped: no side preference). On the held-out half,
the mean distance between where MTCNN's points land in the detector's crop and in MTCNN's own
crop: YuNet 3.38 px uncorrected, 3.26 constant, 3.02 linear; RetinaFace 2.00, 1.81, 1.79.
reports/detectors/landmark_fit.json has every figure.
"""

from __future__ import annotations

import numpy as np

# Fitted by benchmarks/fit_landmarks.py (see the module docstring); MTCNN is the reference (none).
# Points: left eye, right eye, nose, left mouth, right mouth; B's rows and columns interleave x0, y0, x1, ...
CORRECTION_KINDS = ("linear", "constant", "none")  # what the detectors apply by default: linear
OFFSETS_112: dict[str, np.ndarray] = {  # the constant correction d = c, (5, 2)
    "yunet": np.array([[0.3791, -0.7181], [-0.3791, -0.7181], [0.0000, 0.9324], [-0.4544, 1.0696], [0.4544, 1.0696]]),
    "retinaface": np.array([[-0.5180, -0.3975], [0.5180, -0.3975], [0.0000, -0.3217], [-0.4303, 1.0254], [0.4303, 1.0254]]),
}
LINEAR_112: dict[str, tuple[np.ndarray, np.ndarray]] = {  # name -> (c (5, 2), B (10, 10))
    "yunet": (
        np.array([[-0.1756, 0.5689], [0.1815, 0.5651], [0.0070, 1.2585], [0.2252, 2.2339], [-0.1997, 2.2348]]),
        np.array([
        [-0.2645, -0.2036, 0.2684, 0.3590, -0.0730, -0.1030, 0.0302, -0.1528, -0.0478, 0.3298],
        [0.5343, -0.7257, -0.1385, 0.8439, -0.0415, -0.0157, -0.5777, -0.4763, -0.4668, 0.0504],
        [0.2660, -0.3526, -0.2683, 0.1985, -0.0713, 0.1036, -0.0462, -0.3288, 0.0382, 0.1471],
        [0.1449, 0.8463, -0.5394, -0.7220, 0.0421, -0.0173, 0.4679, 0.0489, 0.5720, -0.4844],
        [-0.1554, 0.1001, -0.1549, -0.1000, -0.1137, -0.0005, 0.0919, 0.1086, 0.0940, -0.1108],
        [-0.1434, -0.1493, 0.1435, -0.1498, -0.0005, -0.2098, -0.3031, -0.1057, 0.3009, -0.1078],
        [0.2178, 0.2972, -0.1523, -0.3036, 0.1019, 0.1835, -0.0143, 0.2073, 0.4261, -0.3498],
        [0.0741, 0.1301, 0.1401, 0.1059, 0.1635, -0.0457, 0.2387, -0.3600, 0.0785, 0.6210],
        [-0.1505, 0.3065, 0.2136, -0.2982, 0.0980, -0.1851, 0.4291, 0.3519, -0.0193, -0.2111],
        [-0.1373, 0.1040, -0.0751, 0.1343, -0.1651, -0.0418, -0.0764, 0.6180, -0.2425, -0.3550]
        ]),
    ),
    "retinaface": (
        np.array([[-0.5237, -0.4716], [0.5181, -0.4774], [-0.0001, 0.0407], [-0.4279, 0.4228], [0.4325, 0.4176]]),
        np.array([
        [-0.1448, -0.0102, 0.0888, 0.1081, 0.1925, -0.0089, 0.0579, -0.0047, 0.0867, 0.0851],
        [0.1861, -0.2118, -0.0231, 0.3031, 0.2470, 0.1227, 0.1427, 0.1862, 0.2628, -0.1357],
        [0.0881, -0.1060, -0.1467, 0.0092, 0.1899, 0.0092, 0.0832, -0.0884, 0.0558, 0.0054],
        [0.0266, 0.3047, -0.1855, -0.2108, -0.2470, 0.1256, -0.2659, -0.1327, -0.1422, 0.1877],
        [-0.0689, -0.0026, -0.0685, 0.0036, -0.1271, 0.0005, -0.0845, 0.0183, -0.0849, -0.0166],
        [-0.0349, 0.0311, 0.0369, 0.0301, 0.0006, -0.0717, -0.0024, 0.0968, 0.0039, 0.0972],
        [0.1637, 0.0847, 0.0117, 0.0373, -0.1048, 0.0859, -0.2051, -0.0282, -0.0367, -0.0552],
        [-0.1422, 0.1422, -0.0901, -0.1842, -0.1911, 0.0137, 0.0184, -0.3740, -0.0666, 0.3162],
        [0.0120, -0.0396, 0.1642, -0.0848, -0.1037, -0.0846, -0.0352, 0.0591, -0.2049, 0.0262],
        [0.0888, -0.1843, 0.1426, 0.1409, 0.1929, 0.0129, 0.0702, 0.3144, -0.0209, -0.3740]
        ]),
    ),
}


def correct_landmarks(detector: str, landmarks: np.ndarray, kind: str = "linear") -> np.ndarray:
    """A face's five points (5, 2) moved by the detector's fitted correction of this kind (linear:
    LINEAR_112, constant: OFFSETS_112, none); unchanged without one or when the points are degenerate."""
    if kind not in CORRECTION_KINDS:
        raise ValueError(f"correction {kind!r} is not one of {CORRECTION_KINDS}")
    if kind == "linear" and detector in LINEAR_112:
        intercept, slope = LINEAR_112[detector]
        return shift_in_template_frame(landmarks, intercept, slope)
    if kind == "constant" and detector in OFFSETS_112:
        return shift_in_template_frame(landmarks, OFFSETS_112[detector])
    return landmarks


def shift_in_template_frame(landmarks: np.ndarray, mean_offset: np.ndarray, slope: np.ndarray | None = None) -> np.ndarray:
    """Points moved by d = mean_offset + (M(p) - T) @ slope, d given in the template frame of their own warp M."""
    from facebench.data.align import ARCFACE_TEMPLATE_112, similarity_to_template

    points = np.asarray(landmarks, dtype=np.float64)
    matrix = similarity_to_template(points)
    if matrix is None:
        return landmarks
    linear = matrix[:, :2].astype(np.float64)
    offsets = np.asarray(mean_offset, dtype=np.float64).reshape(5, 2)
    if slope is not None:
        relative = (points @ linear.T + matrix[:, 2] - ARCFACE_TEMPLATE_112).reshape(10)
        offsets = offsets + (relative @ np.asarray(slope, dtype=np.float64)).reshape(5, 2)
    shift = np.linalg.solve(linear, offsets.T).T
    return (points + shift).astype(np.float32)
