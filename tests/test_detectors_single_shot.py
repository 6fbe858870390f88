"""YuNet and RetinaFace: packaged weights checked by SHA-256, RetinaFace's priors and decoding by
hand, both detectors on real LFW faces (skipped without ../shared/data) and on synthetic frames
(no face, several faces, tiny and huge), the landmark order shared with MTCNN and Haar, the
landmark correction, and the folder aligner's fallback count."""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
import torch

from facebench.data import packaged_weights
from facebench.data.align import ARCFACE_TEMPLATE_112, align_face, similarity_to_template
from facebench.data.detectors import Face, build_detector, get_detector
from facebench.data.landmarks import LINEAR_112, OFFSETS_112, correct_landmarks, shift_in_template_frame
from facebench.data.retinaface import RetinaFaceDetector, RetinaFaceNet, decode, load_network, prior_boxes
from facebench.data.yunet import YunetDetector
from facebench.errors import FacebenchError

SINGLE_SHOT = ("yunet", "retinaface")
LFW_PHOTOS = [Path("lfw") / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg",
              Path("lfw") / "Aaron_Peirsol" / "Aaron_Peirsol_0001.jpg",
              Path("lfw") / "Aaron_Sorkin" / "Aaron_Sorkin_0001.jpg"]  # fmt: skip


@pytest.fixture
def photos(shared_data: Path) -> list[np.ndarray]:
    paths = [shared_data / p for p in LFW_PHOTOS]
    if not all(p.is_file() for p in paths):
        pytest.skip("the LFW photos are not present")
    return [cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB) for p in paths]


@pytest.fixture(scope="module", params=SINGLE_SHOT)
def detector(request: pytest.FixtureRequest):
    return get_detector(request.param)


def assert_plausible(face: Face) -> None:
    """One frontal face near the middle of a 250x250 deep-funneled LFW photo, points in Face's order."""
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    x1, y1, x2, y2 = face.box
    assert 60 < x2 - x1 < 160 and abs((x1 + x2) / 2 - 125) < 25 and abs((y1 + y2) / 2 - 125) < 35
    assert lx < nx < rx and mlx < nx < mrx  # image left first
    assert max(ly, ry) < ny < min(mly, mry)  # eyes above the nose above the mouth
    assert 30 < rx - lx < 60
    assert face.landmarks.shape == (5, 2) and face.landmarks.dtype == np.float32 and face.box.dtype == np.float32


# --- packaged weights -------------------------------------------------------------------------------


@pytest.mark.parametrize("file", sorted(packaged_weights.PACKAGED_SHA256))
def test_packaged_weights_pass_their_checksum(file: str) -> None:
    assert packaged_weights.checked_weight_path(file).is_file()
    assert (packaged_weights.WEIGHTS_DIR / f"LICENSE-{'yunet' if 'yunet' in file else 'retinaface'}.txt").is_file()


@pytest.mark.parametrize("file", sorted(packaged_weights.PACKAGED_SHA256))
def test_altered_or_missing_weights_are_refused_in_one_line(file: str, tmp_path: Path) -> None:
    expected = packaged_weights.PACKAGED_SHA256[file]
    with pytest.raises(FacebenchError, match=f"detector weights missing \\(expected sha256 {expected}\\)") as missing:
        packaged_weights.checked_weight_path(file, tmp_path)
    assert file in str(missing.value) and "\n" not in str(missing.value)
    data = bytearray((packaged_weights.WEIGHTS_DIR / file).read_bytes())
    data[len(data) // 2] ^= 0xFF
    (tmp_path / file).write_bytes(bytes(data))
    with pytest.raises(FacebenchError, match=f"altered .*expected {expected}\\); fix: reinstall") as altered:
        packaged_weights.checked_weight_path(file, tmp_path)
    assert file in str(altered.value) and "\n" not in str(altered.value)


def test_detectors_refuse_altered_weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for file in packaged_weights.PACKAGED_SHA256:
        shutil.copy(packaged_weights.WEIGHTS_DIR / file, tmp_path / file)
        with (tmp_path / file).open("ab") as handle:
            handle.write(b"\0")
    monkeypatch.setattr(packaged_weights, "WEIGHTS_DIR", tmp_path)
    for name in SINGLE_SHOT:
        with pytest.raises(FacebenchError, match="altered"):
            build_detector(name)


# --- RetinaFace network, priors and decoding --------------------------------------------------------


def test_retinaface_weights_load_strictly() -> None:
    net = load_network()
    state = torch.load(packaged_weights.checked_weight_path("mobilenet0.25_Final.pth"), map_location="cpu",
                       weights_only=True)
    assert set(net.state_dict()) == set(state) and len(state) == 300
    with pytest.raises(RuntimeError, match="Missing key"):
        RetinaFaceNet().load_state_dict({k: v for k, v in state.items() if not k.startswith("ssh3")}, strict=True)


def test_prior_boxes_by_hand() -> None:
    """16 x 24 image: stride 8 -> 2 x 3 cells, 16 -> 1 x 2, 32 -> 1 x 1; two anchors per cell."""
    priors = prior_boxes(16, 24)
    expected = []
    for cy in (4, 12):
        for cx in (4, 12, 20):
            expected += [[cx, cy, 16, 16], [cx, cy, 32, 32]]
    expected += [[8, 8, 64, 64], [8, 8, 128, 128], [24, 8, 64, 64], [24, 8, 128, 128]]
    expected += [[16, 16, 256, 256], [16, 16, 512, 512]]
    np.testing.assert_array_equal(priors, np.array(expected, dtype=np.float32))


@pytest.mark.parametrize(("height", "width"), [(1, 1), (37, 53), (250, 250), (360, 640)])
def test_priors_match_the_network_output(height: int, width: int) -> None:
    with torch.inference_mode():
        probs, boxes, points = load_network()(torch.zeros(2, 3, height, width))
    count = sum(2 * math.ceil(height / s) * math.ceil(width / s) for s in (8, 16, 32))
    assert probs.shape == (2, count) and boxes.shape == (2, count, 4) and points.shape == (2, count, 10)
    assert len(prior_boxes(height, width)) == count


def test_decoding_by_hand() -> None:
    priors = np.array([[100, 50, 16, 16], [20, 30, 64, 64]], dtype=np.float32)
    box_offsets = np.array([[0, 0, 0, 0], [1, -2, math.log(2) / 0.2, -math.log(2) / 0.2]], dtype=np.float32)
    landmark_offsets = np.zeros((2, 10), dtype=np.float32)
    landmark_offsets[1] = [1, -1, 0, 0, 2, 0, 0, 2, -1, -1]
    boxes, points = decode(priors, box_offsets, landmark_offsets)
    # zero offsets: the anchor itself; centre moves by offset * 0.1 * size, size by exp(offset * 0.2)
    np.testing.assert_allclose(boxes[0], [92, 42, 108, 58], atol=1e-5)
    cx, cy, w, h = 20 + 0.1 * 64, 30 - 2 * 0.1 * 64, 128, 32
    np.testing.assert_allclose(boxes[1], [cx - w / 2, cy - h / 2, cx + w / 2, cy + h / 2], atol=1e-4)
    np.testing.assert_allclose(points[0], np.tile([100, 50], (5, 1)), atol=1e-5)
    step = 0.1 * 64
    np.testing.assert_allclose(points[1], [[20 + step, 30 - step], [20, 30], [20 + 2 * step, 30], [20, 30 + 2 * step],
                                           [20 - step, 30 - step]], atol=1e-4)  # fmt: skip


# --- real faces ------------------------------------------------------------------------------------


def test_each_detector_finds_the_real_faces(photos: list[np.ndarray], detector) -> None:
    for photo in photos:
        faces = detector.detect(photo)
        assert len(faces) >= 1
        assert faces[0].score > 0.8
        assert_plausible(faces[0])
        crop, info = align_face(photo, detector)
        assert crop.shape == (112, 112, 3) and not info.fallback and info.detector == detector.name


def test_landmark_order_is_the_same_for_every_detector(photos: list[np.ndarray]) -> None:
    """Each point of each detector lies nearer the same point of every other detector than any other point."""
    names = ["yunet", "retinaface", "haar"]
    try:
        names.append(get_detector("mtcnn").name)
    except FacebenchError:
        pass  # no MTCNN weights here: compare the others
    for photo in photos:
        found = {name: get_detector(name).detect(photo) for name in names}
        points = {name: faces[0].landmarks for name, faces in found.items() if faces}
        assert {"yunet", "retinaface"} <= set(points)
        for a in points:
            for b in points:
                distances = np.linalg.norm(points[a][:, None] - points[b][None], axis=2)
                assert (distances.argmin(axis=1) == np.arange(5)).all(), (a, b)


def test_retinaface_batch_equals_one_by_one(photos: list[np.ndarray]) -> None:
    detector = get_detector("retinaface")
    frames = [photos[0], photos[1], cv2.resize(photos[2], (300, 260))]  # two of one size, one other
    batched = detector.detect_batch(frames)
    for frame, faces in zip(frames, batched, strict=True):
        single = detector.detect(frame)
        assert len(single) == len(faces)
        for a, b in zip(single, faces, strict=True):
            np.testing.assert_allclose(a.box, b.box, atol=0.05)
            np.testing.assert_allclose(a.landmarks, b.landmarks, atol=0.05)


def test_several_faces_and_a_huge_frame(photos: list[np.ndarray], detector) -> None:
    canvas = np.full((300, 800, 3), 90, np.uint8)
    for k, photo in enumerate(photos):
        canvas[25:275, 20 + 260 * k : 270 + 260 * k] = photo
    faces = detector.detect(canvas)
    assert len(faces) == 3
    assert sorted(int((f.box[0] + f.box[2]) / 2 - 20) // 260 for f in faces) == [0, 1, 2]  # one per photo
    huge = cv2.resize(canvas, None, fx=6, fy=6, interpolation=cv2.INTER_LINEAR)  # 4800 x 1800, searched downscaled
    big = detector.detect(huge)
    assert len(big) == 3
    for small_face in faces:
        nearest = min(big, key=lambda f: np.abs(f.box / 6 - small_face.box).sum())
        np.testing.assert_allclose((nearest.landmarks + 0.5) / 6 - 0.5, small_face.landmarks, atol=4.0)


# --- synthetic frames without faces ----------------------------------------------------------------


@pytest.mark.parametrize("shape", [(1, 1), (7, 5), (31, 40), (240, 320), (2000, 3000)])
def test_no_face_in_flat_noise_and_tiny_frames(detector, shape: tuple[int, int]) -> None:
    assert detector.detect(np.full((*shape, 3), 128, np.uint8)) == []
    noise = np.random.default_rng(0).integers(0, 256, (*shape, 3), dtype=np.uint8)
    assert detector.detect(noise) == []


def test_a_frame_without_a_face_falls_back_to_the_centre_crop(detector) -> None:
    crop, info = align_face(np.full((250, 250, 3), 128, np.uint8), detector)
    assert crop.shape == (112, 112, 3) and info.fallback and info.faces == 0 and info.detector == detector.name


def test_align_folder_counts_the_fallbacks(shared_data: Path, tmp_path: Path) -> None:
    from facebench.data.align_folder import align_folder

    src = tmp_path / "src" / "person"
    src.mkdir(parents=True)
    photo = shared_data / LFW_PHOTOS[0]
    if not photo.is_file():
        pytest.skip(f"{photo} is not present")
    shutil.copy(photo, src / "face.jpg")
    cv2.imwrite(str(src / "blank.jpg"), np.full((250, 250, 3), 200, np.uint8))
    for name in SINGLE_SHOT:
        summary = align_folder(tmp_path / "src", tmp_path / name, detector=name)
        assert (summary.aligned, summary.by_detector, summary.fallback) == (2, 1, 1)
        assert cv2.imread(str(tmp_path / name / "person" / "face.jpg")).shape == (112, 112, 3)


# --- landmark correction ---------------------------------------------------------------------------


def test_correction_moves_points_by_the_offsets_in_the_template_frame() -> None:
    rng = np.random.default_rng(1)
    angle, scale, shift = 0.3, 2.2, np.array([40.0, 70.0])
    rotation = scale * np.array([[math.cos(angle), -math.sin(angle)], [math.sin(angle), math.cos(angle)]])
    points = ((ARCFACE_TEMPLATE_112 + rng.normal(0, 1.0, (5, 2))) @ rotation.T + shift).astype(np.float32)
    offsets = np.array([[1, 0.5], [-1, 0.5], [0, 2], [0.5, 1], [-0.5, 1]], dtype=np.float32)
    moved = shift_in_template_frame(points, offsets)
    matrix = similarity_to_template(points)
    linear = matrix[:, :2]
    np.testing.assert_allclose((moved - points) @ linear.T, offsets, atol=1e-4)
    assert np.array_equal(correct_landmarks("mtcnn", points), points)  # the reference has no offsets


def test_fitted_corrections_are_small_and_symmetric() -> None:
    for name in SINGLE_SHOT:
        offsets = OFFSETS_112[name]
        assert offsets.shape == (5, 2) and np.abs(offsets).max() < 8  # template pixels
        np.testing.assert_allclose(offsets[[1, 0, 2, 4, 3]] * [-1, 1], offsets, atol=1e-3)
        intercept, slope = LINEAR_112[name]
        assert intercept.shape == (5, 2) and slope.shape == (10, 10) and np.abs(intercept).max() < 8
        np.testing.assert_allclose(intercept[[1, 0, 2, 4, 3]] * [-1, 1], intercept, atol=0.05)  # fitted with mirrors


def test_linear_correction_of_the_template_itself_is_its_intercept() -> None:
    """Points already on the template: M is the identity, M(p) - T = 0, so they move by c alone."""
    for name in SINGLE_SHOT:
        moved = correct_landmarks(name, ARCFACE_TEMPLATE_112.copy())
        np.testing.assert_allclose(moved - ARCFACE_TEMPLATE_112, LINEAR_112[name][0], atol=1e-3)
        constant = correct_landmarks(name, ARCFACE_TEMPLATE_112.copy(), "constant")
        np.testing.assert_allclose(constant - ARCFACE_TEMPLATE_112, OFFSETS_112[name], atol=1e-3)
        assert np.array_equal(correct_landmarks(name, ARCFACE_TEMPLATE_112, "none"), ARCFACE_TEMPLATE_112)
    with pytest.raises(ValueError, match="correction 'affine'"):
        correct_landmarks("yunet", ARCFACE_TEMPLATE_112, "affine")


def test_uncorrected_detectors_give_their_own_points(photos: list[np.ndarray]) -> None:
    for corrected, raw in ((YunetDetector(), YunetDetector(correction="none")),
                           (RetinaFaceDetector(), RetinaFaceDetector(correction="none"))):  # fmt: skip
        a, b = corrected.detect(photos[0])[0], raw.detect(photos[0])[0]
        np.testing.assert_array_equal(a.box, b.box)
        np.testing.assert_allclose(a.landmarks, correct_landmarks(corrected.name, b.landmarks), atol=1e-5)
