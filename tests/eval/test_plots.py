"""The verification figures are written as real PNGs."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from facebench.eval.plots import ScoredSet, plot_roc, plot_scores


def test_roc_and_score_plots_are_written(tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    issame = np.arange(400) % 2 == 0
    distance = np.clip(np.where(issame, rng.normal(0.8, 0.2, 400), rng.normal(1.6, 0.2, 400)), 0, 4)
    sets = [ScoredSet("a", distance, issame, 1.2), ScoredSet("b", distance[::-1].copy(), issame, 1.0)]
    plot_roc(sets, tmp_path / "roc.png", "r18 on a, b")
    plot_scores(sets, tmp_path / "scores.png")
    roc = cv2.imread(str(tmp_path / "roc.png"))
    scores = cv2.imread(str(tmp_path / "scores.png"))
    assert roc is not None and roc.shape[0] > 300 and roc.shape[1] > 500
    assert scores is not None and scores.shape[0] > 2 * 300  # one panel per set
    assert sorted(p.name for p in tmp_path.iterdir()) == ["roc.png", "scores.png"]  # no temp files left
