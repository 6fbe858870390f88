"""5-point similarity alignment: landmarks land on the ArcFace template; main-face choice and fallback."""

from __future__ import annotations

import numpy as np
import pytest

from facebench.data.align import (
    ARCFACE_TEMPLATE_112,
    align_all_faces,
    align_face,
    center_crop,
    similarity_to_template,
    warp_to_template,
)
from facebench.data.detectors import Face, main_face


def similarity(angle_deg: float, scale: float, shift: tuple[float, float]) -> np.ndarray:
    angle = np.deg2rad(angle_deg)
    rotation = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    return np.hstack([rotation, np.array(shift)[:, None]])


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


TRANSFORMS = [(0.0, 1.0, (0.0, 0.0)), (17.0, 2.3, (80.0, 40.0)), (-35.0, 0.8, (150.5, 90.25)), (90.0, 3.1, (300.0, 20.0))]


@pytest.mark.parametrize(("angle", "scale", "shift"), TRANSFORMS)
def test_fitted_transform_inverts_the_known_similarity(angle: float, scale: float, shift: tuple[float, float]) -> None:
    landmarks = apply(similarity(angle, scale, shift), ARCFACE_TEMPLATE_112.astype(np.float64))
    matrix = similarity_to_template(landmarks)
    np.testing.assert_allclose(apply(matrix, landmarks), ARCFACE_TEMPLATE_112, atol=1e-3)


def blob_image(points: np.ndarray, size: tuple[int, int], sigma: float) -> np.ndarray:
    """Gaussian spots (peak 255) at sub-pixel points; pixel (row r, col c) has its centre at (x=c, y=r)."""
    ys, xs = np.mgrid[0 : size[0], 0 : size[1]].astype(np.float64)
    image = np.zeros(size)
    for x, y in points:
        image += 255 * np.exp(-((xs - x) ** 2 + (ys - y) ** 2) / (2 * sigma**2))
    return np.repeat(np.clip(np.round(image), 0, 255).astype(np.uint8)[:, :, None], 3, axis=2)


def spot_centres(crop: np.ndarray, around: np.ndarray, radius: int = 7) -> np.ndarray:
    """Intensity-weighted centroid of the crop within `radius` of each expected point."""
    gray = crop[:, :, 0].astype(np.float64)
    ys, xs = np.mgrid[0 : gray.shape[0], 0 : gray.shape[1]]
    found = []
    for x, y in around:
        window = ((xs - x) ** 2 + (ys - y) ** 2 <= radius**2) * gray
        found.append([(window * xs).sum() / window.sum(), (window * ys).sum() / window.sum()])
    return np.array(found)


@pytest.mark.parametrize(("angle", "scale", "shift"), TRANSFORMS[1:])
def test_warped_pixels_put_the_landmarks_on_the_template(angle: float, scale: float, shift: tuple[float, float]) -> None:
    landmarks = apply(similarity(angle, scale, shift), ARCFACE_TEMPLATE_112.astype(np.float64))
    sigma = 1.6 * scale  # about 1.6 px in the 112 crop whatever the scale
    image = blob_image(landmarks, (520, 520), sigma)
    crop = warp_to_template(image, landmarks)
    assert crop.shape == (112, 112, 3) and crop.dtype == np.uint8
    error = np.linalg.norm(spot_centres(crop, ARCFACE_TEMPLATE_112) - ARCFACE_TEMPLATE_112, axis=1)
    assert error.max() < 0.1, error  # measured 0.013 px; a half-pixel convention slip gives 0.23-0.9


def test_one_wild_landmark_does_not_move_the_others() -> None:
    # least median of squares: a single bad point (a misplaced mouth corner) is out-voted
    true = apply(similarity(10.0, 2.0, (60.0, 30.0)), ARCFACE_TEMPLATE_112.astype(np.float64))
    noisy = true.copy()
    noisy[4] += (25.0, -30.0)
    moved = apply(similarity_to_template(noisy), true)
    assert np.abs(moved[:4] - ARCFACE_TEMPLATE_112[:4]).max() < 0.5


def test_degenerate_landmarks_raise() -> None:
    with pytest.raises(ValueError, match="degenerate"):
        warp_to_template(np.zeros((50, 50, 3), np.uint8), np.full((5, 2), 10.0))


class FixedDetector:
    """A test double returning the given faces, to check align_face's choices."""

    name = "fixed"

    def __init__(self, faces: list[Face]) -> None:
        self.faces = faces

    def detect(self, image: np.ndarray) -> list[Face]:
        return self.faces


def face_at(angle: float, scale: float, shift: tuple[float, float], score: float) -> Face:
    landmarks = apply(similarity(angle, scale, shift), ARCFACE_TEMPLATE_112.astype(np.float64)).astype(np.float32)
    box = np.array([shift[0], shift[1], shift[0] + 112 * scale, shift[1] + 112 * scale], dtype=np.float32)
    return Face(box, score, landmarks)


def test_main_face_prefers_big_and_central() -> None:
    # 400x400 frame: a 100 px box at the centre beats a 120 px box in the corner
    central = Face(np.array([150, 150, 250, 250], np.float32), 0.9, np.zeros((5, 2), np.float32))
    corner = Face(np.array([0, 0, 120, 120], np.float32), 0.99, np.zeros((5, 2), np.float32))
    assert main_face([corner, central], 400, 400) is central
    # value = area - 2 * offset^2: 14400 - 2 * 2 * 140^2 < 10000, but a huge corner face wins
    huge = Face(np.array([0, 0, 300, 300], np.float32), 0.5, np.zeros((5, 2), np.float32))
    assert main_face([central, huge], 400, 400) is huge  # 90000 - 2 * 2 * 50^2 = 80000 > 10000


def test_align_face_warps_the_main_face_and_records_it() -> None:
    image = np.random.default_rng(1).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    side = face_at(0.0, 0.5, (10.0, 10.0), 0.99)
    main = face_at(5.0, 2.0, (90.0, 90.0), 0.95)
    crop, info = align_face(image, FixedDetector([side, main]))
    np.testing.assert_array_equal(crop, warp_to_template(image, main.landmarks))
    assert (info.detector, info.score, info.fallback, info.faces, info.face) == ("fixed", 0.95, False, 2, main)


def test_no_face_falls_back_to_the_centre_crop() -> None:
    image = np.random.default_rng(2).integers(0, 256, (250, 250, 3), dtype=np.uint8)
    aligned = align_face(image, FixedDetector([]))
    np.testing.assert_array_equal(aligned.image, center_crop(image))
    assert (aligned.info.detector, aligned.info.score, aligned.info.fallback, aligned.info.faces) == ("fixed", None, True, 0)
    degenerate = Face(np.array([0, 0, 10, 10], np.float32), 0.9, np.zeros((5, 2), np.float32))
    assert align_face(image, FixedDetector([degenerate])).info.fallback


def test_center_needs_no_detector() -> None:
    image = np.random.default_rng(3).integers(0, 256, (300, 200, 3), dtype=np.uint8)
    crop, info = align_face(image, "center")
    np.testing.assert_array_equal(crop, center_crop(image))
    assert (info.detector, info.score, info.fallback, info.faces) == ("center", None, False, 0)


def test_align_all_faces_keeps_order_and_skips_degenerate() -> None:
    image = np.random.default_rng(4).integers(0, 256, (400, 400, 3), dtype=np.uint8)
    first, second = face_at(0.0, 1.0, (20.0, 30.0), 0.99), face_at(-8.0, 1.5, (200.0, 150.0), 0.9)
    degenerate = Face(np.array([0, 0, 10, 10], np.float32), 0.8, np.zeros((5, 2), np.float32))
    crops, faces = align_all_faces(image, FixedDetector([first, degenerate, second]))
    assert crops.shape == (2, 112, 112, 3) and crops.dtype == np.uint8 and faces == [first, second]
    np.testing.assert_array_equal(crops[1], warp_to_template(image, second.landmarks))
    none, no_faces = align_all_faces(image, FixedDetector([]))
    assert none.shape == (0, 112, 112, 3) and no_faces == []


def test_non_rgb_input_is_refused() -> None:
    with pytest.raises(ValueError, match="uint8 RGB"):
        align_face(np.zeros((50, 50), np.uint8), "center")
    with pytest.raises(ValueError, match="uint8 RGB"):
        align_face(np.zeros((50, 50, 3), np.float32), "center")
