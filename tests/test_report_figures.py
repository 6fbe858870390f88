"""Figure 1's accuracy axis stays on the points when a reference teacher is far off; the ROC names its set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facebench.eval.plots import ScoredSet, _folds_text, plot_roc
from facebench.report.figures import _Point, accuracy_limits


def point(acc: float, teacher: bool = False, label: str = "mobilenet (KD)") -> _Point:
    return _Point(label, label.split()[0], "*" if teacher else "o", teacher, 0.5, acc, 1.0)


STUDENTS = [point(55.2), point(58.0), point(61.0)]


def test_far_reference_line_goes_to_the_legend_not_the_axis() -> None:
    dlib = point(98.8, teacher=True, label="dlib (teacher)")
    limits, drawn, far = accuracy_limits(STUDENTS, [dlib])
    assert far == [dlib] and drawn == []
    low, high = limits
    assert low < 54.2 and high > 62.0  # every point and error bar inside
    assert high < 70  # the students fill most of the axis, not its bottom fifth
    assert (61.0 - 55.2) / (high - low) > 0.6


def test_near_reference_line_is_drawn_inside_the_limits() -> None:
    near = point(64.0, teacher=True, label="r18 (teacher)")
    limits, drawn, far = accuracy_limits(STUDENTS, [near])
    assert drawn == [near] and far == []
    assert limits[0] < 54.2 and limits[1] > 64.0


def test_without_points_every_line_is_drawn() -> None:
    dlib = point(98.8, teacher=True, label="dlib (teacher)")
    assert accuracy_limits([], [dlib]) == (None, [dlib], [])


def test_roc_title_names_the_folds_and_the_figure_is_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    issame = np.arange(400) % 2 == 0
    distance = np.clip(np.where(issame, rng.normal(0.8, 0.2, 400), rng.normal(1.6, 0.2, 400)), 0, 4)
    sets = [ScoredSet(f"run {k}", distance, issame, 1.2, folds) for k, folds in enumerate((4, 4, 10))]
    assert _folds_text(sets[:2]) == ", 4 folds" and _folds_text(sets) == ", 4-10 folds"
    assert _folds_text([ScoredSet("x", distance, issame, 1.2)]) == ""
    plot_roc(sets, tmp_path / "roc.png", "every run on lfw")
    image = cv2.imread(str(tmp_path / "roc.png"))
    assert image is not None and image.shape[1] > image.shape[0]  # the legend widens the figure
