"""The centre-crop rule: shape, dtype and exactly which pixels it takes."""

import numpy as np
import pytest

from facebench.data.align import center_crop, center_crop_box


def test_box_for_lfw_size() -> None:
    # 250x250: side round(125.0) = 125, left (250-125)//2 = 62, top round(117.5 - 62.5) = 55
    assert center_crop_box(250, 250) == (55, 62, 125)


def test_box_uses_shorter_side() -> None:
    assert center_crop_box(1080, 1920) == (238, 690, 540)  # top round(507.6 - 270) = 238
    assert center_crop_box(400, 100) == (163, 25, 50)  # top round(188 - 25) = 163
    assert center_crop_box(1, 1) == (0, 0, 1)


@pytest.mark.parametrize("shape", [(224, 224, 3), (300, 224, 3), (224, 500, 3)])
def test_side_112_copies_pixels_unchanged(shape: tuple[int, int, int]) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, size=shape, dtype=np.uint8)
    top, left, side = center_crop_box(shape[0], shape[1])
    assert side == 112
    out = center_crop(image)
    assert out.dtype == np.uint8 and out.shape == (112, 112, 3)
    np.testing.assert_array_equal(out, image[top : top + 112, left : left + 112])


def test_resized_crop_takes_exactly_the_box() -> None:
    # The box is filled with one colour, everything else with another: a crop one pixel
    # too wide or too low would blend the outside colour into the border of the output.
    image = np.zeros((250, 250, 3), dtype=np.uint8)
    image[55:180, 62:187] = (200, 100, 50)
    out = center_crop(image)
    assert out.shape == (112, 112, 3) and out.dtype == np.uint8
    assert (out == np.array([200, 100, 50], dtype=np.uint8)).all()
    image[54, 62:187] = 255  # a bright row just above the box changes nothing
    image[180, 62:187] = 255  # nor just below
    np.testing.assert_array_equal(center_crop(image), out)
    image[55, 62:187] = 255  # but the box's own first row does
    assert (center_crop(image)[0] != out[0]).any()
