"""Verification figures: ROC with log-scale FAR, and matched vs mismatched score histograms.

Each function takes one entry per pairs set and writes one PNG atomically (matplotlib Agg).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.eval.verification import cosine_from_sq_l2, roc_curve
from facebench.fileio import atomic_path


@dataclass(frozen=True)
class ScoredSet:
    """One pairs set for plotting: squared-L2 distance per pair, labels, chosen threshold."""

    label: str
    distance: np.ndarray
    issame: np.ndarray
    threshold_sq_l2: float
    folds: int | None = None  # how many folds the pairs span (the k of the k-fold protocol), where known


def _pyplot():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_with_legend_right(plt, fig, ax, path: str | Path) -> None:
    """Grid, the legend right of the axes (never over a curve), and the PNG written atomically."""
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1.0), fontsize="small", borderaxespad=0)
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def plot_roc(sets: list[ScoredSet], path: str | Path, title: str) -> None:
    """TAR against FAR (log scale from one false accept upwards), one curve per set.

    ``title`` names what is plotted (model, pairs set); the fold counts of the sets are appended.
    The legend sits right of the axes so it never covers a curve.
    """
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    smallest_far = 1.0
    for item in sets:
        far, tar, _ = roc_curve(item.distance, item.issame)
        n_mismatched = int((~item.issame).sum())
        smallest_far = min(smallest_far, 1.0 / n_mismatched)
        visible = far > 0
        ax.plot(far[visible], tar[visible], label=item.label, linewidth=1.5, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_xlim(smallest_far, 1.0)
    ax.set_ylim(0.0, 1.01)
    ax.set_xlabel("false acceptance rate (FAR)")
    ax.set_ylabel("true acceptance rate (TAR)")
    ax.set_title(f"ROC: {title}{_folds_text(sets)}", fontsize="medium")
    _save_with_legend_right(plt, fig, ax, path)


def _folds_text(sets: list[ScoredSet]) -> str:
    """', 10 folds' (or ', 2-10 folds' when the sets differ); '' when no set knows its folds."""
    counts = sorted({item.folds for item in sets if item.folds is not None})
    if not counts:
        return ""
    return f", {counts[0]} folds" if len(counts) == 1 else f", {counts[0]}-{counts[-1]} folds"


def plot_scores(sets: list[ScoredSet], path: str | Path) -> None:
    """Histograms of cosine similarity for matched and mismatched pairs, one panel per set."""
    plt = _pyplot()
    fig, axes = plt.subplots(len(sets), 1, figsize=(6, 3.2 * len(sets)), squeeze=False)
    for ax, item in zip(axes[:, 0], sets, strict=True):
        cosine = cosine_from_sq_l2(item.distance)
        low, high = float(cosine.min()), float(cosine.max())
        pad = max(0.02 * (high - low), 1e-3)  # the data's range: untrained models crowd near cos 1
        bins = np.linspace(low - pad, high + pad, 61)
        ax.hist(cosine[item.issame], bins=bins, alpha=0.6, label="matched", color="tab:green")
        ax.hist(cosine[~item.issame], bins=bins, alpha=0.6, label="mismatched", color="tab:red")
        ax.axvline(cosine_from_sq_l2(item.threshold_sq_l2), color="black", linestyle="--", linewidth=1, label="threshold")
        ax.set_title(item.label)
        ax.set_xlabel("cosine similarity")
        ax.set_ylabel("pairs")
        ax.legend(fontsize="small")
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)
    plt.close(fig)


@dataclass(frozen=True)
class DetCurve:
    """One all-pairs set for a DET plot: FNMR against FMR, and the smallest FMR its impostors resolve."""

    label: str
    fmr: np.ndarray
    fnmr: np.ndarray
    smallest_fmr: float  # 1 / impostor count


def plot_det(curves: list[DetCurve], path: str | Path, title: str) -> None:
    """DET: FNMR against FMR, both on log axes (ISO/IEC 19795-1 style), one curve per set; the FMR axis starts
    at the smallest FMR any set resolves (one impostor)."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(8, 4.5))
    smallest_fmr = min(curve.smallest_fmr for curve in curves)
    lowest_fnmr = 1.0
    for curve in curves:
        visible = (curve.fmr > 0) & (curve.fnmr > 0)
        if visible.any():
            lowest_fnmr = min(lowest_fnmr, float(curve.fnmr[visible].min()))
        ax.plot(curve.fmr[visible], curve.fnmr[visible], label=curve.label, linewidth=1.5, drawstyle="steps-post")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlim(smallest_fmr, 1.0)
    ax.set_ylim(max(lowest_fnmr / 2, 1e-5), 1.0)
    ax.set_xlabel("false match rate (FMR)")
    ax.set_ylabel("false non-match rate (FNMR)")
    ax.set_title(f"DET: {title}", fontsize="medium")
    _save_with_legend_right(plt, fig, ax, path)
