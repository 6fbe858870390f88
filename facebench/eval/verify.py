"""``facebench verify`` as library calls: check pairs sets, embed, score, and write the outputs.

Outputs in one folder, each written atomically and only after every set is scored:
verify.json / verify.md / verify.csv (one row per pairs set), scores.csv (one row per
pair), roc.png and scores.png.
"""

from __future__ import annotations

import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from facebench.data import PairSet, read_pairs
from facebench.data.degrade import Degradation, degraded_name
from facebench.data.folder_set import FolderSet
from facebench.deploy import DeployedModel
from facebench.errors import FacebenchError
from facebench.eval.embed import CachedEmbedder
from facebench.eval.folder_verify import (
    DET_PLOT,
    ScoredFolders,
    folder_meta,
    folder_result,
    folder_row,
    plot_det,
    save_folder_scores,
    score_folder_sets,
)
from facebench.eval.plots import ScoredSet, plot_roc, plot_scores
from facebench.eval.verification import (
    DEFAULT_N_FOLDS,
    VerificationResult,
    check_fold_kinds,
    check_folds,
    cosine_from_sq_l2,
    evaluate_distances,
    kfold_ids,
    squared_l2_distances,
)
from facebench.external import is_external
from facebench.fileio import atomic_path
from facebench.modelspec import ResolvedModel
from facebench.runfolder import SCORES, RunFolder

PROTOCOL = (
    "insightface 10-fold: squared L2 of L2-normalised embeddings, thresholds 0:4:0.01, each fold's threshold "
    "chosen on the other folds; accuracy = mean of fold accuracies, std with ddof=0; FAR, FRR, EER, AUC, "
    "TAR@FAR over all pairs pooled"
)


@dataclass
class ScoredPairs:
    """One pairs set after verification."""

    name: str  # the set's name, with ``@RECIPE`` for a degraded copy
    pairs: PairSet
    distance: np.ndarray  # squared L2 per pair
    folds: np.ndarray  # fold id per pair actually used
    result: VerificationResult
    wall_s: float  # embedding + metrics
    degrade: Degradation | None = None  # applied to each pair's second image (the probe)


def check_pair_set(pairs: PairSet) -> None:
    """Refuse, before any embedding, a set the protocol cannot score (error names the pairs file)."""
    n_matched = int(pairs.issame.sum())
    if n_matched == 0 or n_matched == len(pairs):
        raise FacebenchError(
            f"{pairs.source}: {n_matched} matched and {len(pairs) - n_matched} mismatched pairs; "
            "verification needs both"
        )
    try:
        if pairs.folds is None:
            folds = kfold_ids(len(pairs), DEFAULT_N_FOLDS)
        else:
            folds = pairs.folds
            check_folds(folds)
        check_fold_kinds(folds, pairs.issame)
    except FacebenchError as exc:
        raise FacebenchError(f"{pairs.source}: {exc}") from None


def parse_named_pairs(values: list[str], option: str = "--val") -> dict[str, str]:
    """``--val``/``--pairs`` ``NAME=PATH`` (repeatable) -> {name: path}; a bare PATH is named by its stem,
    numbered when an earlier set has that name; a NAME given twice is refused."""
    sets: dict[str, str] = {}
    for value in values:
        name, sep, path = value.partition("=")
        if not sep or Path(value).exists():
            name, path = _numbered(Path(value).stem, sets), value
        if not name or not path:
            raise FacebenchError(f"{option} {value!r}: expected NAME=PATH, e.g. {option} lfw=data/lfw/pairs.txt")
        if name in sets:
            raise FacebenchError(f"{option} {value!r}: the name {name!r} is used twice; give each set its own name")
        sets[name] = path
    return sets


def load_pair_sets(sets: dict[str, str], folds: int | None, option: str, *, format: str = "auto",
                   images_root: str | Path | None = None, check: bool = True) -> list[PairSet]:
    """Read every named pairs set and, with ``check``, refuse one the protocol cannot score (a bad file fails
    fast, not after an epoch); ``folds``: keep the first k (``option`` names that setting in errors)."""
    loaded = []
    for name, path in sets.items():
        pairs = read_pairs(path, format, images_root)
        pairs.name = name
        pairs = first_folds(pairs, folds, option) if folds is not None else pairs
        if check:
            check_pair_set(pairs)
        loaded.append(pairs)
    return loaded


def _numbered(name: str, taken: Collection[str]) -> str:
    """``name``, or ``name_2``, ``name_3``, ... when it is taken."""
    candidate, k = name, 2
    while candidate in taken:
        candidate, k = f"{name}_{k}", k + 1
    return candidate


def first_folds(pairs: PairSet, k: int, option: str = "--folds") -> PairSet:
    """The pairs of folds 0..k-1 (the file's folds, else contiguous 10-fold) and only the images they use.

    Whole folds, so the k-fold protocol stays intact on a cheaper subset. The one fold selection
    of ``verify --folds``, ``train --val-folds`` and the bench; ``option`` names the setting in errors.
    """
    check_pair_set(pairs)
    folds = pairs.folds if pairs.folds is not None else kfold_ids(len(pairs))
    n_folds = int(folds.max()) + 1
    if not 2 <= k <= n_folds:
        why, fix = (("the k-fold protocol needs at least 2 folds", "give 2 or more") if k < 2
                    else (f"the set has only {n_folds} folds", f"give at most {n_folds}"))  # fmt: skip
        raise FacebenchError(f"{pairs.source}: {option} {k}: {why}; {fix}, or leave {option} out for all folds")
    if k == n_folds:
        return pairs
    keep = folds < k
    used = np.unique(np.concatenate([pairs.left[keep], pairs.right[keep]]))
    position = np.full(len(pairs.images), -1, dtype=np.int64)
    position[used] = np.arange(len(used))
    return PairSet(
        name=pairs.name, source=pairs.source, images=[pairs.images[i] for i in used],
        left=position[pairs.left[keep]], right=position[pairs.right[keep]], issame=pairs.issame[keep],
        folds=folds[keep], lines=pairs.lines[keep] if pairs.lines is not None else None,
    )  # fmt: skip


def unique_names(sets: list[PairSet]) -> list[str]:
    """Set names for outputs: the file stems, numbered when two sets share one."""
    names: list[str] = []
    for pairs in sets:
        names.append(_numbered(pairs.name, names))
    return names


def score_pair_sets(
    resolved: ResolvedModel,
    sets: list[PairSet],
    *,
    align: str,
    device: torch.device,
    batch_size: int,
    flip: bool,
    precision: str | None = None,
    num_workers: int | None = None,
    progress: bool = True,
    degradations: Sequence[Degradation] = (),
    embed: CachedEmbedder | None = None,
) -> list[ScoredPairs]:
    """Embed each set's unique images once (``precision``: embed_images'; ``embed``: an embedder shared with
    other sets of the run, else one made here) and compute every verification metric; for each of
    ``degradations`` one more row, each pair's second image degraded against the clean first."""
    for pairs in sets:
        check_pair_set(pairs)
    embed = embed or CachedEmbedder(resolved.model, align=align, device=device, batch_size=batch_size, flip=flip,
                                    precision=precision, num_workers=num_workers, progress=progress)  # fmt: skip
    scored = []
    for name, pairs in zip(unique_names(sets), sets, strict=True):
        start = time.perf_counter()
        emb = embed(pairs.images, description=f"embedding {name}")
        folds = pairs.folds if pairs.folds is not None else kfold_ids(len(pairs))
        for degrade in (None, *degradations):
            probes = emb if degrade is None else embed(pairs.images, description=f"embedding {name}@{degrade.spec}",
                                                       degrade=degrade)  # fmt: skip
            distance = squared_l2_distances(emb[pairs.left], probes[pairs.right])
            result = evaluate_distances(distance, pairs.issame, pairs.folds)
            scored.append(ScoredPairs(degraded_name(name, degrade), pairs, distance, folds, result,
                                      time.perf_counter() - start, degrade))  # fmt: skip
            start = time.perf_counter()
    return scored


def verify_sets(
    resolved: ResolvedModel,
    pair_sets: list[PairSet],
    folder_sets: Sequence[FolderSet] = (),
    *,
    align: str,
    device: torch.device,
    batch_size: int,
    flip: bool,
    precision: str | None = None,
    degradations: Sequence[Degradation] = (),
    bootstrap: int = 1000,
    seed: int = 0,
) -> tuple[list[ScoredPairs], list[ScoredFolders]]:
    """``facebench verify``'s scoring (the CLI's and the bench's): the pairs sets by the 10-fold protocol, the
    folder sets by the all-pairs protocol, each image embedded once per recipe across all of them."""
    if degradations and is_external(resolved.model):
        raise FacebenchError(f"--degrade: {resolved.label} aligns its own faces, so its crops cannot be degraded; "
                             "drop --degrade for this model")
    embed = CachedEmbedder(resolved.model, align=align, device=device, batch_size=batch_size, flip=flip,
                           precision=precision)  # fmt: skip
    scored = score_pair_sets(resolved, pair_sets, align=align, device=device, batch_size=batch_size, flip=flip,
                             precision=precision, degradations=degradations, embed=embed)  # fmt: skip
    return scored, score_folder_sets(folder_sets, embed, degradations=degradations, bootstrap=bootstrap, seed=seed)


def run_settings(resolved: ResolvedModel, device: torch.device, batch_size: int, flip: bool, align: str,
                 folds: int | None, precision: str | None = None) -> dict[str, object]:
    """The settings recorded beside a verification (``folds``: k of ``first_folds``, or "all"; ``precision``:
    embed_images'): runtime, precision and input spec, and for an external or deployed model its own settings."""
    from facebench.device import device_name
    from facebench.eval.embed import default_precision
    from facebench.input_spec import model_input_spec

    settings: dict[str, object] = {"device": device_name(device), "batch_size": batch_size, "flip": flip,
                                   "align": align, "folds": folds or "all", "runtime": "torch",
                                   "precision": precision or default_precision(device),
                                   "input": model_input_spec(resolved.model).describe()}  # fmt: skip
    if is_external(resolved.model) or isinstance(resolved.model, DeployedModel):
        settings |= resolved.model.settings()
    return settings


def summary_row(item: ScoredPairs, resolved: ResolvedModel, settings: dict[str, object]) -> dict[str, object]:
    """One verify.json / verify.md row: set, model, headline metrics, settings, wall time."""
    r = item.result
    return {
        "set": item.name,
        "pairs": item.pairs.source,
        "protocol": "10-fold",
        "degrade": item.degrade.spec if item.degrade else None,
        "model": resolved.label,
        "untrained": resolved.untrained,
        "n_pairs": r.n_pairs,
        "accuracy": r.accuracy,
        "accuracy_std": r.accuracy_std,
        "threshold_sq_l2": r.threshold_sq_l2,
        "threshold_cosine": r.threshold_cosine,
        "far": r.far,
        "frr": r.frr,
        "eer": r.eer,
        "roc_auc": r.roc_auc,
        **{f"tar_at_far_{key}": value for key, value in r.tar_at_far.items()},
        "n_folds": r.n_folds,
        "folds_from": r.folds_from,
        **settings,
        "wall_s": round(item.wall_s, 3),
    }


def write_scores_csv(path: Path, scored: list[ScoredPairs], model_label: str) -> None:
    """Per-pair scores: model, set, pair (0-based), score (cosine similarity = 1 - d/2), issame, fold."""
    frames = [
        pd.DataFrame({
            "model": model_label,
            "set": item.name,
            "pair": np.arange(len(item.distance)),
            "score": cosine_from_sq_l2(item.distance),
            "issame": item.pairs.issame.astype(int),
            "fold": item.folds,
        })
        for item in scored
    ]  # fmt: skip
    with atomic_path(path) as tmp:
        pd.concat(frames).to_csv(tmp, index=False)


def write_outputs(
    out_dir: str | Path, scored: list[ScoredPairs], resolved: ResolvedModel, settings: dict[str, object],
    extra_meta: dict[str, object] | None = None, folders: Sequence[ScoredFolders] = (),
) -> list[Path]:
    """Write verify.{json,md,csv} (pairs sets' rows, then folder sets'), and for pairs sets scores.csv, roc.png
    and scores.png, for folder sets det.png, into ``out_dir``.

    ``settings`` go into every row and the meta; ``extra_meta`` (the bench's stage) into the meta only, so the
    rows match those of the same verification run by hand."""
    from facebench.provenance import environment

    out = Path(out_dir)
    rows = [summary_row(item, resolved, settings) for item in scored]
    folder_rows = [folder_row(item, resolved, settings) for item in folders]
    meta = {
        "model": resolved.label,
        "model_name": resolved.name,
        "external": is_external(resolved.model),
        "pretrained": resolved.pretrained,  # weights from elsewhere: the report lists it without config.json
        "untrained": resolved.untrained,
        "model_source": resolved.source,
        **settings,
        **(extra_meta or {}),
        "protocol": PROTOCOL,
        **(folder_meta(folders) if folders else {}),
        "degradations": {item.name: item.degrade.describe() for item in [*scored, *folders] if item.degrade},
        "units": "rates are fractions in [0, 1]; thresholds as squared L2 (0..4) and cosine (1 - d/2); "
        "tar_at_far n/a when the set has fewer than 1/FAR mismatched pairs",
        "environment": environment(),
        "results": {row["set"]: item.result.to_dict() for row, item in zip(rows, scored, strict=True)}
        | {item.name: folder_result(item) for item in folders},
    }
    paths = RunFolder(out).write_verify(rows + folder_rows, title=f"facebench verify: {resolved.label}", meta=meta)
    if folders:
        plot_det(folders, out / DET_PLOT, resolved.label)
        paths += [out / DET_PLOT, *save_folder_scores(folders, out)]
    if not scored:
        return paths
    write_scores_csv(out / SCORES, scored, resolved.label)
    plot_sets = [
        ScoredSet(f"{item.name}: {resolved.label}", item.distance, item.pairs.issame, item.result.threshold_sq_l2,
                  int(item.folds.max()) + 1)
        for item in scored
    ]
    plot_roc(plot_sets, out / "roc.png", f"{resolved.label} on {', '.join(item.name for item in scored)}")
    plot_scores(plot_sets, out / "scores.png")
    return [*paths, out / SCORES, out / "roc.png", out / "scores.png"]
