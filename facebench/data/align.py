"""Face alignment to the standard ArcFace 112x112 crop.

Two ways to get there:

* ``center_crop``: no detection, a fixed square cut for photos whose face is already
  roughly centred (LFW deep-funneled, the CelebA subset in ../shared/data).
* ``warp_to_template``: a 5-point similarity transform onto the ArcFace template, fed by
  a detector's landmarks.
"""

from __future__ import annotations

import cv2
import numpy as np

from facebench.models.input_spec import INPUT_SIZE

# Centre-crop rule, measured rather than guessed: the reference MTCNN's median five
# landmarks on 150 random images of each set (250x250) were, for LFW deep-funneled,
# eyes (104.5, 113.3) (147.5, 112.4), nose (125.9, 137.5), mouth (108.3, 159.1)
# (145.5, 158.3); for the CelebA subset eyes (104.6, 113.2) (143.8, 112.7), nose
# (123.6, 137.1), mouth (106.8, 153.7) (142.2, 153.8). The least-squares scale +
# shift that maps the average of the two onto ARCFACE_TEMPLATE_112 is a 125.8 px
# square centred at (125.2, 117.3): half the image side, centred horizontally and
# 47 % of the way down (the template leaves more room under the mouth than above
# the eyes). With it the median landmarks land within 2.1 px of the template
# (LFW alone would prefer 0.53 of the side, CelebA 0.48).
CENTER_CROP_SIDE_FRACTION = 0.5  # crop side / shorter image side
CENTER_CROP_CENTRE_Y_FRACTION = 0.47  # crop centre row / image height

# ArcFace (insightface) 112x112 five-point template, pixels (x, y): left eye, right eye,
# nose tip, left mouth corner, right mouth corner (left = the image's left).
ARCFACE_TEMPLATE_112 = np.array(
    [
        [38.2946, 51.6963],
        [73.5318, 51.5014],
        [56.0252, 71.7366],
        [41.5493, 92.3655],
        [70.7299, 92.2041],
    ],
    dtype=np.float32,
)


def center_crop_box(height: int, width: int) -> tuple[int, int, int]:
    """(top, left, side) of the centre-crop square for an image of this size.

    side = round(0.5 * min(h, w)); left = (w - side) // 2;
    top = round(0.47 * h - side / 2). The square always lies inside the image (its half
    side is at most a quarter of the height).
    """
    side = max(1, round(CENTER_CROP_SIDE_FRACTION * min(height, width)))
    left = (width - side) // 2
    top = round(CENTER_CROP_CENTRE_Y_FRACTION * height - side / 2)
    return top, left, side


def center_crop(image: np.ndarray) -> np.ndarray:
    """uint8 RGB image of any size -> uint8 RGB 112x112 by the documented centre-crop rule.

    The square from ``center_crop_box`` is resized to 112x112 with area interpolation
    (copied unchanged when it is already 112 px).
    """
    top, left, side = center_crop_box(image.shape[0], image.shape[1])
    crop = image[top : top + side, left : left + side]
    if side != INPUT_SIZE:
        crop = cv2.resize(crop, (INPUT_SIZE, INPUT_SIZE), interpolation=cv2.INTER_AREA)
    return np.ascontiguousarray(crop)
