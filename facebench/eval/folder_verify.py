"""``verify --folders``: every pair of an identity-folder set at fixed operating points, and 1:N on the same
embeddings, each also with a degraded probe.

Each image is embedded once (and once more per ``--degrade`` recipe); the all-pairs protocol
(facebench.eval.operating_points) and open/closed-set identification (facebench.eval.identification) run
on those embeddings. A degraded row scores every pair with its second image (in set order) degraded against
the clean first, and searches with degraded probes against the clean gallery.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from facebench.data.degrade import Degradation, degraded_name
from facebench.data.folder_set import FolderSet
from facebench.eval import identification, operating_points, plots
from facebench.eval.embed import CachedEmbedder
from facebench.eval.identification import IdentificationResult, evaluate_identification
from facebench.eval.operating_points import AllPairsResult, PairScores, score_pairs
from facebench.eval.paired_points import pair_scores_name, save_pair_scores
from facebench.eval.plots import DetCurve
from facebench.modelspec import ResolvedModel

DET_PLOT = "det.png"


@dataclass
class ScoredFolders:
    """One folder set (clean or with a degraded probe) after the all-pairs protocol and identification."""

    name: str  # the set's name, with ``@RECIPE`` for a degraded probe
    folders: FolderSet
    operating: AllPairsResult
    identification: IdentificationResult
    scores: PairScores  # what paired comparisons with another run need (saved as pairs_<set>.npz)
    wall_s: float
    degrade: Degradation | None = None


def score_folder_sets(
    sets: Sequence[FolderSet],
    embed: CachedEmbedder,
    *,
    degradations: Sequence[Degradation] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> list[ScoredFolders]:
    """Embed each set once (and once per degradation; ``embed`` remembers images a pairs set already embedded)
    and run the all-pairs protocol (``bootstrap`` replicates, ``seed``) and identification."""
    scored = []
    for folders in sets:
        start = time.perf_counter()
        emb = embed(folders.images, description=f"embedding {folders.name}")
        for degrade in (None, *degradations):
            name = degraded_name(folders.name, degrade)
            probes = None if degrade is None else embed(folders.images, description=f"embedding {name}",
                                                        degrade=degrade)  # fmt: skip
            pair_scores = score_pairs(emb, folders.labels, probes)
            operating = operating_points.operating_points(pair_scores, replicates=bootstrap, seed=seed)
            identification = evaluate_identification(emb, folders.labels, probe_emb=probes)
            scored.append(ScoredFolders(name, folders, operating, identification, pair_scores,
                                        time.perf_counter() - start, degrade))  # fmt: skip
            start = time.perf_counter()
    return scored


def folder_row(item: ScoredFolders, resolved: ResolvedModel, settings: dict[str, object]) -> dict[str, object]:
    """One verify.json row for a folder set; the 10-fold keys (accuracy, ...) are null: no pairs file folds it."""
    operating = item.operating.to_row()
    return {
        "set": item.name,
        "pairs": item.folders.source,
        "protocol": operating.pop("protocol"),
        "degrade": item.degrade.spec if item.degrade else None,
        "model": resolved.label,
        "untrained": resolved.untrained,
        "n_pairs": item.operating.n_genuine + item.operating.n_impostor,
        "accuracy": None,
        "accuracy_std": None,
        **operating,
        **item.identification.to_row(),
        **settings,
        "wall_s": round(item.wall_s, 3),
    }


def folder_result(item: ScoredFolders) -> dict[str, object]:
    """verify.json's ``results`` entry of a folder set: every operating point and identification figure; the DET
    curve (thousands of points) is drawn in det.png, not stored."""
    operating = item.operating.to_dict()
    for name in ("det_threshold", "det_fmr", "det_fnmr"):
        operating.pop(name)
    return operating | {"identification": item.identification.to_dict()}


def folder_meta(folders: Sequence[ScoredFolders]) -> dict[str, object]:
    """What verify.json's meta says of the folder sets' protocols, so anyone can repeat them."""
    return {
        "all_pairs_protocol": {"threshold": operating_points.THRESHOLD_RULE,
                               "resolution": operating_points.RESOLUTION_RULE, "eer": operating_points.EER_RULE,
                               "intervals": operating_points.BOOTSTRAP_RULE},
        "identification_protocol": {"gallery": identification.GALLERY_RULE, "rank": identification.RANK_RULE,
                                    "open_set": identification.OPEN_SET_RULE},
    }


def save_folder_scores(folders: Sequence[ScoredFolders], out: Path) -> list[Path]:
    """Each folder set's pairs_<set>.npz (genuine scores and top impostors) for later paired comparisons."""
    paths = [out / pair_scores_name(item.name) for item in folders]
    for item, path in zip(folders, paths, strict=True):
        save_pair_scores(path, item.scores)
    return paths


def plot_det(folders: Sequence[ScoredFolders], path: Path, model_label: str) -> None:
    """det.png: one DET curve per folder set (clean and degraded)."""
    curves = [DetCurve(f"{item.name}: {model_label}", item.operating.det_fmr, item.operating.det_fnmr,
                       1.0 / item.operating.n_impostor) for item in folders]  # fmt: skip
    plots.plot_det(curves, path, f"{model_label}, every pair of {', '.join(item.name for item in folders)}")


def _pct(value: float | None) -> str:
    return "n/a" if value is None else f"{100 * value:.2f}%"


def folder_summary(item: ScoredFolders) -> str:
    """One printed line: FNMR at each FMR with its interval, rank-1/5, FNIR at FPIR, pair counts."""
    row = item.operating.to_row() | item.identification.to_row()
    fnmr = ", ".join(
        f"{key.removeprefix('fnmr_fmr_')} {_pct(row[key])}"
        + (f" [{_pct(row[key + '_lo'])}, {_pct(row[key + '_hi'])}]" if row.get(key + "_lo") is not None else "")
        for key in row if key.startswith("fnmr_fmr_") and not key.endswith(("_lo", "_hi"))
    )  # fmt: skip
    return (f"FNMR at FMR {fnmr}; EER {_pct(row['eer'])}; rank-1 {_pct(row['rank1'])}, rank-5 {_pct(row['rank5'])}, "
            f"FNIR at FPIR 1e-2 {_pct(row['fnir_fpir_1e-2'])}, 1e-3 {_pct(row['fnir_fpir_1e-3'])}; "
            f"{row['n_genuine']} genuine and {row['n_impostor']} impostor pairs of {row['n_images']} images "
            "(95% intervals: bootstrap over identities)")
