"""Degraded capture recipes: parsing, each step against an independent computation, determinism."""

import cv2
import numpy as np
import pytest

from facebench.data.degrade import parse_degradation
from facebench.errors import FacebenchError


@pytest.fixture
def face() -> np.ndarray:
    rng = np.random.default_rng(3)
    return rng.integers(0, 256, (112, 112, 3), dtype=np.uint8)


def test_canonical_spec_and_steps():
    d = parse_degradation(" downscale:24 + jpeg:20.0 ", seed=5)
    assert d.spec == "downscale:24+jpeg:20"
    assert d.steps == (("downscale", 24.0), ("jpeg", 20.0))
    assert d.describe()["seed"] == 5


@pytest.mark.parametrize("spec, says", [
    ("pixelate:3", "not one of downscale, jpeg, blur, noise, dark"),
    ("jpeg", "not one of"),
    ("jpeg:0", "jpeg takes a JPEG quality, 1-100"),
    ("downscale:24.5", "(a whole number)"),
    ("downscale:200", "1-112"),
    ("dark:1.5", "brightness factor"),
    ("blur:nan", "Gaussian sigma"),
    ("blur:2+", "step ''"),
])
def test_bad_specs_say_what_is_wrong(spec, says):
    with pytest.raises(FacebenchError, match="--degrade") as info:
        parse_degradation(spec)
    assert says in str(info.value)


def test_downscale_equals_resize_down_and_up(face):
    expected = cv2.resize(cv2.resize(face, (24, 24), interpolation=cv2.INTER_AREA), (112, 112),
                          interpolation=cv2.INTER_LINEAR)
    assert np.array_equal(parse_degradation("downscale:24")(face, "a.jpg"), expected)


def test_dark_scales_intensities(face):
    out = parse_degradation("dark:0.4")(face, "a.jpg")
    assert np.array_equal(out, np.rint(face * 0.4).astype(np.uint8))


def test_blur_is_gaussian_with_the_stated_sigma(face):
    out = parse_degradation("blur:2")(face, "a.jpg")
    assert np.array_equal(out, cv2.GaussianBlur(face, (13, 13), 2, borderType=cv2.BORDER_REFLECT_101))
    assert out.std() < face.std() / 2  # white noise loses most of its variance under a sigma-2 blur


def test_jpeg_quality_changes_the_error(face):
    low = parse_degradation("jpeg:10")(face, "a.jpg").astype(int)
    high = parse_degradation("jpeg:95")(face, "a.jpg").astype(int)
    assert np.abs(low - face).mean() > np.abs(high - face).mean() > 0


def test_noise_has_the_stated_sigma_and_repeats_for_a_seed():
    flat = np.full((112, 112, 3), 128, dtype=np.uint8)
    d = parse_degradation("noise:8", seed=1)
    a, b = d(flat, "x/7.jpg"), d(flat, "x/7.jpg")
    assert np.array_equal(a, b)
    assert not np.array_equal(a, d(flat, "x/8.jpg"))  # each image its own noise
    assert not np.array_equal(a, parse_degradation("noise:8", seed=2)(flat, "x/7.jpg"))
    assert abs((a.astype(float) - 128).std() - 8) < 0.3


def test_steps_compose_left_to_right(face):
    both = parse_degradation("downscale:32+dark:0.5")(face, "a.jpg")
    step = parse_degradation("dark:0.5")(parse_degradation("downscale:32")(face, "a.jpg"), 0)
    assert np.array_equal(both, step)
