"""The study's Figure 1 (accuracy against GFLOPs), one ROC overlaying every run and the training curves,
from run folders."""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from facebench.distill.config import METHODS as DISTILL_METHODS
from facebench.errors import FacebenchError
from facebench.eval.plots import ScoredSet, _pyplot
from facebench.fileio import atomic_path
from facebench.report.runs import METHODS
from facebench.report.significance import sample_std
from facebench.report.study import TEACHER, StudyRow, cell_values, plotted_runs, seed_values
from facebench.runfolder import METRICS, SCORES

MARKERS = {name: method.marker for name, method in DISTILL_METHODS.items()}  # by method; a teacher is a star
TEACHER_MARKER = "*"
DODGE = 1.06  # x factor between neighbouring markers of one model
FAR_LINE_SPANS = 1.0  # a reference line farther than this many accuracy spans from the points is not drawn


@dataclass
class _Point:
    label: str
    model: str
    marker: str
    teacher: bool
    gflops: float
    acc_pct: float
    std_pct: float


def figure_points(rows: list[StudyRow], gflops: dict[str, float],
                  set_name: str) -> tuple[list[_Point], list[_Point], list[str]]:
    """(points: rows and methods with a result on ``set_name`` and a GFLOPs count; reference lines: teachers
    with a result but no count, such as dlib; notes on what is left out). A point is Table 1's accuracy: a
    run's, ± its k-fold std, or for a cell with several seeds their mean ± their std (ddof=1)."""
    points, lines, notes = [], [], []
    for plotted in plotted_runs(rows):
        name, method, row, run = plotted.name, plotted.method, plotted.row, plotted.run
        values = cell_values(run, set_name)
        teacher = row.role == TEACHER
        if values is None:
            notes.append(f"Figure 1 lacks {name}: no {set_name} result in {run.path / 'verify.json'}")
            continue
        accuracy, spread = values["acc_pct"], values["acc_std_pct"]
        seeds = seed_values(row, method, set_name)
        if seeds.size > 1:  # Table 1's cell: the mean over its seeds, their std as the bar
            accuracy, spread = float(seeds.mean()), sample_std(seeds)
        point = _Point(name, row.model, TEACHER_MARKER if teacher else MARKERS[method], teacher,
                       gflops.get(row.model, math.nan), accuracy, spread)
        if row.model in gflops:
            points.append(point)
        elif teacher:
            lines.append(point)  # noted by figure1, which knows whether the line is drawn
        else:
            notes.append(f"Figure 1 lacks {name}: no GFLOPs count for {row.model} in any profile.json")
    return points, lines, notes


def figure1(rows: list[StudyRow], gflops: dict[str, float], set_name: str, paths: list[Path]) -> list[str]:
    """Accuracy on ``set_name`` against GFLOPs (log x), one labelled marker per model and method.

    Error bars are the k-fold std, or the seeds' std for a cell with several. Points of one
    model share its GFLOPs, so they are dodged sideways by a few percent and their labels stacked in accuracy order. Writes each of
    ``paths`` (.png, .svg); returns notes on the points left out or drawn as reference lines.
    A teacher without an operation count (an external model) is a dashed line at its accuracy,
    or a legend entry when that lies far outside the points' range (``accuracy_limits``). The
    legend sits right of the axes.
    """
    points, lines, notes = figure_points(rows, gflops, set_name)
    limits, drawn, far = accuracy_limits(points, lines)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(9, 5.5))
    colours = {m: plt.cm.tab10(k % 10) for k, m in enumerate(dict.fromkeys(p.model for p in points))}
    for model, colour in colours.items():
        group = sorted((p for p in points if p.model == model), key=lambda p: p.acc_pct)
        for k, point in enumerate(group):
            centred = k - (len(group) - 1) / 2
            x = point.gflops * DODGE ** centred
            ax.errorbar(x, point.acc_pct, yerr=point.std_pct, fmt=point.marker, color=colour,
                        markersize=13 if point.teacher else 8, capsize=3)
            ax.annotate(point.label, (x, point.acc_pct), textcoords="offset points", fontsize=8,
                        xytext=(14, 12 * centred), va="center",
                        arrowprops={"arrowstyle": "-", "color": "grey", "linewidth": 0.5})
    for line in drawn:
        ax.axhline(line.acc_pct, color="black", linestyle="--", linewidth=1)
        ax.annotate(f"{line.label}: {line.acc_pct:.2f}% (operations n/a)", (0.01, line.acc_pct),
                    xycoords=("axes fraction", "data"), textcoords="offset points", xytext=(0, 4), fontsize=8)
    if limits is not None:
        ax.set_ylim(*limits)
    if points:
        ax.set_xscale("log")
        xs = [p.gflops for p in points]
        ax.set_xlim(min(xs) / 2.5, max(xs) * 5)  # room for the labels on the right
    ax.legend(handles=_marker_legend(far), loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small",
              borderaxespad=0)
    ax.set_xlabel("GFLOPs per 112x112 image (log scale; a model's markers dodged sideways)")
    ax.set_ylabel(f"{set_name} verification accuracy (%), bars: std over folds or seeds")
    ax.set_title(f"{set_name} accuracy vs operations")
    ax.grid(True, which="both", alpha=0.3)
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)
    notes += [f"Figure 1 draws {line.label} as a horizontal line: no GFLOPs count for {line.model}" for line in drawn]
    notes += [f"Figure 1 names {line.label} ({line.acc_pct:.2f}%) in its legend: no GFLOPs count for {line.model}, "
              "and a line across would squeeze the points, far from its accuracy" for line in far]
    return notes


def accuracy_limits(points: list[_Point], lines: list[_Point]) -> tuple[tuple[float, float] | None, list[_Point],
                                                                        list[_Point]]:
    """(y limits in %, reference lines drawn across, reference lines only named in the legend).

    The limits span the points' accuracy ± std with a margin; a reference line within
    FAR_LINE_SPANS spans of the points (at least 2 pp) is drawn and the limits widened to it,
    one farther off (dlib's 98.8% beside 55-61% students) would squeeze the points into a
    sliver, so it goes in the legend instead. None: no points, matplotlib's own limits.
    """
    if not points:
        return None, lines, []
    low = min(p.acc_pct - p.std_pct for p in points)
    high = max(p.acc_pct + p.std_pct for p in points)
    span = max(high - low, 2.0)
    drawn = [line for line in lines if low - FAR_LINE_SPANS * span <= line.acc_pct <= high + FAR_LINE_SPANS * span]
    far = [line for line in lines if line not in drawn]
    low, high = min([low] + [line.acc_pct for line in drawn]), max([high] + [line.acc_pct for line in drawn])
    margin = 0.08 * (high - low) or 1.0
    return (low - margin, high + margin), drawn, far


def _marker_legend(far: list[_Point]) -> list:
    """Legend entries for the marker shapes (colours are per model and labelled at each point), then the
    reference accuracies too far off to draw."""
    from matplotlib.lines import Line2D

    entries = [Line2D([], [], marker=TEACHER_MARKER, color="grey", linestyle="", markersize=10, label="teacher")]
    entries += [Line2D([], [], marker=MARKERS[m], color="grey", linestyle="", label=title)
                for m, (_, title) in METHODS.items()]
    entries += [Line2D([], [], color="black", linestyle="--", linewidth=1,
                       label=f"{line.label}: {line.acc_pct:.2f}% (off the axis; operations n/a)") for line in far]
    return entries


CURVE_TERM = "loss_arcface"  # the margin loss every run minimises: comparable across methods


def training_curves(rows: list[StudyRow], path: Path) -> tuple[bool, list[str]]:
    """Each trained run's margin loss (metrics.csv ``loss_arcface``) against its step, one line per run folder.

    Writes ``path`` when any run has a curve; returns whether it did and notes on the runs without one.
    """
    curves: list[tuple[str, pd.DataFrame]] = []
    notes = []
    for plotted in plotted_runs(rows):
        if plotted.run.is_external:
            continue
        metrics = plotted.run.path / METRICS
        try:
            curves.append((plotted.name, pd.read_csv(metrics, usecols=["step", CURVE_TERM])))
        except (OSError, ValueError, pd.errors.EmptyDataError):
            notes.append(f"training curves lack {plotted.name}: no {CURVE_TERM} column in {metrics}")
    if not curves:
        return False, notes
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 5))
    for name, frame in curves:
        ax.plot(frame["step"], frame[CURVE_TERM], label=name)
    ax.set_xlabel("training step")
    ax.set_ylabel("ArcFace loss (mean over each logged window)")
    ax.set_title("Training curves: the margin loss of every run")
    ax.grid(True, alpha=0.3)
    ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)
    return True, notes


def read_scores(path: Path, set_name: str) -> tuple[np.ndarray, np.ndarray, int | None] | None:
    """(cosine scores, issame, number of folds or None without a fold column) of ``set_name`` from a verify
    scores.csv, or None when the set is absent."""
    try:
        frame = pd.read_csv(path)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError) as exc:
        raise FacebenchError(f"{path}: unreadable scores file ({str(exc).splitlines()[0]})") from None
    missing = {"set", "score", "issame"} - set(frame.columns)
    if missing:
        raise FacebenchError(f"{path}: missing columns {', '.join(sorted(missing))}; it was not written by facebench verify")
    chosen = frame[frame["set"].astype(str) == set_name]
    if chosen.empty:
        return None
    folds = int(chosen["fold"].nunique()) if "fold" in chosen.columns else None
    return chosen["score"].to_numpy(dtype=np.float64), chosen["issame"].to_numpy().astype(bool), folds


def roc_sets(rows: list[StudyRow], set_name: str) -> tuple[list[ScoredSet], list[str]]:
    """Every run's scores on ``set_name`` as ROC inputs, and the runs left out (no scores for that set)."""
    sets, left_out = [], []
    for plotted in plotted_runs(rows):
        scores = plotted.run.path / SCORES
        loaded = read_scores(scores, set_name) if scores.is_file() else None
        if loaded is None:
            left_out.append(f"{plotted.name}: no {set_name} scores in {scores}")
            continue
        cosine, issame, folds = loaded
        threshold = plotted.run.sets.get(set_name, {}).get("threshold_sq_l2", math.nan)
        sets.append(ScoredSet(plotted.name, 2.0 * (1.0 - cosine), issame, threshold, folds))  # squared L2 = 2 - 2 cos
    return sets, left_out
