"""Detectors on a real LFW photo (skipped without ../shared/data or MTCNN weights), and where
MTCNN's weights come from."""

from __future__ import annotations

import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from facebench.data import mtcnn_weights
from facebench.data.align import ARCFACE_TEMPLATE_112, align_face, similarity_to_template
from facebench.data.detectors import Face, get_detector
from facebench.errors import FacebenchError

LFW_PHOTO = Path("lfw") / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg"


@pytest.fixture
def photo(shared_data: Path) -> np.ndarray:
    path = shared_data / LFW_PHOTO
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


@pytest.fixture(scope="module")
def mtcnn():
    try:
        return get_detector("mtcnn")
    except FacebenchError as exc:
        pytest.skip(f"MTCNN weights unavailable: {exc}")


def assert_plausible(face: Face, image: np.ndarray) -> None:
    """One frontal face near the middle of a 250x250 deep-funneled LFW photo."""
    (lx, ly), (rx, ry), (nx, ny), (mlx, mly), (mrx, mry) = face.landmarks
    x1, y1, x2, y2 = face.box
    assert 60 < x2 - x1 < 160 and abs((x1 + x2) / 2 - 125) < 25 and abs((y1 + y2) / 2 - 125) < 35
    assert lx < nx < rx and mlx < nx < mrx  # left-right order
    assert max(ly, ry) < ny < min(mly, mry)  # eyes above the nose above the mouth
    assert 30 < rx - lx < 60  # eye distance of a face about 100 px wide
    assert all(x1 <= x <= x2 and y1 <= y <= y2 for x, y in face.landmarks)
    # the similarity onto the template fits these five points to within a few pixels
    matrix = similarity_to_template(face.landmarks)
    residual = face.landmarks @ matrix[:, :2].T + matrix[:, 2] - ARCFACE_TEMPLATE_112
    assert np.linalg.norm(residual, axis=1).max() < 8


def test_mtcnn_finds_the_one_face(photo: np.ndarray, mtcnn) -> None:
    faces = mtcnn.detect(photo)
    assert len(faces) == 1
    assert faces[0].score > 0.99
    assert faces[0].landmarks.shape == (5, 2) and faces[0].landmarks.dtype == np.float32
    assert_plausible(faces[0], photo)


def test_mtcnn_landmarks_follow_a_mirror_and_a_resize(photo: np.ndarray, mtcnn) -> None:
    """Pixel conventions: mirrored photo -> x' = W - 1 - x; 3x larger photo (searched
    downscaled to 640 px) -> the same points in the larger frame's pixels."""
    face = mtcnn.detect(photo)[0]
    mirrored = mtcnn.detect(np.ascontiguousarray(photo[:, ::-1]))[0]
    swapped = mirrored.landmarks[[1, 0, 2, 4, 3]]
    np.testing.assert_allclose(photo.shape[1] - 1 - swapped[:, 0], face.landmarks[:, 0], atol=2.0)
    np.testing.assert_allclose(swapped[:, 1], face.landmarks[:, 1], atol=2.0)
    big = cv2.resize(photo, None, fx=3, fy=3, interpolation=cv2.INTER_CUBIC)
    (found,) = mtcnn.detect(big)
    np.testing.assert_allclose((found.landmarks + 0.5) / 3 - 0.5, face.landmarks, atol=2.0)


def test_mtcnn_finds_nothing_in_a_flat_frame(mtcnn) -> None:
    assert mtcnn.detect(np.full((240, 320, 3), 128, np.uint8)) == []


def test_haar_finds_the_face(photo: np.ndarray) -> None:
    faces = get_detector("haar").detect(photo)
    assert len(faces) >= 1
    assert_plausible(max(faces, key=lambda f: f.score), photo)


def test_aligned_crop_puts_mtcnn_landmarks_on_the_template(photo: np.ndarray, mtcnn) -> None:
    crop, info = align_face(photo, mtcnn)
    assert crop.shape == (112, 112, 3) and not info.fallback and info.faces == 1
    # detect again inside the crop: the landmarks sit where the transform sends the
    # original ones, and the eyes on the template (a nose may differ from the template's
    # by several pixels: faces differ, and the robust fit follows the other four points)
    again = mtcnn.detect(cv2.resize(crop, (224, 224), interpolation=cv2.INTER_CUBIC))
    assert again, "no face found in the aligned crop"
    landmarks = (again[0].landmarks + 0.5) / 2 - 0.5
    matrix = similarity_to_template(info.face.landmarks)
    expected = info.face.landmarks @ matrix[:, :2].T + matrix[:, 2]
    assert np.linalg.norm(landmarks - expected, axis=1).max() < 2.0
    assert np.linalg.norm(landmarks[:2] - ARCFACE_TEMPLATE_112[:2], axis=1).max() < 2.0


def test_unknown_detector_lists_the_choices() -> None:
    with pytest.raises(FacebenchError, match="choose one of: mtcnn, yunet, retinaface, haar"):
        get_detector("yolo")


# ---- where the weights come from ----------------------------------------------------------


@pytest.fixture
def empty_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mtcnn_weights, "_from_installed_package", lambda: None)
    return tmp_path / "cache"


def test_unreachable_pypi_gives_one_line_with_the_fix(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    failed = subprocess.CompletedProcess([], 1, "", "ERROR: Could not find a version that satisfies the requirement\n")
    monkeypatch.setattr(mtcnn_weights.subprocess, "run", lambda *a, **k: failed)
    with pytest.raises(FacebenchError) as error:
        mtcnn_weights.mtcnn_weight_paths()
    message = str(error.value)
    assert "\n" not in message
    assert "Could not find a version" in message
    assert "pip install --no-deps facenet-pytorch==2.6.0" in message and "--detector haar" in message
    assert not (empty_cache / "mtcnn" / "pnet.pt").exists()


def test_tampered_weights_are_refused(empty_cache: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(mtcnn_weights, "_from_downloaded_wheel", lambda: dict.fromkeys(mtcnn_weights.WEIGHT_SHA256, b"x"))
    with pytest.raises(FacebenchError, match="fail their checksum"):
        mtcnn_weights.mtcnn_weight_paths()


def test_installed_package_is_used_without_pip(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, mtcnn) -> None:
    """Weights found through an installed facenet-pytorch's metadata are checked and cached."""
    real = mtcnn_weights.mtcnn_weight_paths()  # the real files (cached by the mtcnn fixture)
    site = tmp_path / "site"
    (site / "facenet_pytorch" / "data").mkdir(parents=True)
    for name, path in real.items():
        (site / "facenet_pytorch" / "data" / name).write_bytes(path.read_bytes())

    class Dist:
        def locate_file(self, relative: str) -> Path:
            return site / relative

    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(mtcnn_weights.importlib.metadata, "distribution", lambda name: Dist())
    monkeypatch.setattr(mtcnn_weights.subprocess, "run", lambda *a, **k: pytest.fail("pip must not run"))
    paths = mtcnn_weights.mtcnn_weight_paths()
    assert paths["onet.pt"] == tmp_path / "cache" / "mtcnn" / "onet.pt"
    assert paths["onet.pt"].read_bytes() == real["onet.pt"].read_bytes()
    assert sorted(p.name for p in (tmp_path / "cache" / "mtcnn").iterdir()) == ["onet.pt", "pnet.pt", "rnet.pt"]
