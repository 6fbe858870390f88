"""A tiny study made with the real train / verify / profile code paths, for the report and check tests.

Two toy backbones (``tiny-test`` and a wider ``tiny-wide``) train on toy faces with in-loop
validation, which writes verify.json and scores.csv through ``facebench verify``'s writer.
Student runs are ``train`` runs whose config.json then gets the keys a distill run records
(``config.method``, top-level ``teacher``), as ``facebench.report.runs`` documents them:
one training per method instead of four distillations keeps the module fast, and
test_distill / test_bench check that real distill runs write those keys. The profile comes
from ``facebench profile``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from train_helpers import TINY, TinyNet, make_faces, tiny_spec, write_pairs_csv
from typer.testing import CliRunner

from facebench.cli import app
from facebench.eval.verification import cosine_from_sq_l2, evaluate_distances
from facebench.fileio import write_json_atomic
from facebench.models import registry
from facebench.models.common import FEATURE_MAP_SIZE
from facebench.models.registry import ModelSpec
from facebench.runfolder import file_sha256
from facebench.train.config import TrainConfig
from facebench.train.run import train

WIDE = "tiny-wide"


class WideNet(TinyNet):
    """TinyNet with 16 channels: more operations, so Figure 1 has two x positions."""

    def __init__(self, *, embedding_size: int = 16) -> None:
        super().__init__(embedding_size=embedding_size)
        self.feature_channels = 16
        self.body = nn.Sequential(
            nn.Conv2d(3, 16, 4, stride=4, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
            nn.Conv2d(16, 16, 4, stride=4, bias=False), nn.BatchNorm2d(16), nn.ReLU(),
        )  # fmt: skip
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * FEATURE_MAP_SIZE**2, embedding_size),
                                  nn.BatchNorm1d(embedding_size))


def register_tiny_models(monkeypatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    monkeypatch.setitem(registry._REGISTRY, WIDE, ModelSpec(WIDE, "test", "wider toy backbone", WideNet))


def train_run(faces: Path, out: Path, model: str, seed: int = 0) -> Path:
    config = TrainConfig(model=model, data=str(faces), out=str(out), embedding_size=16, epochs=2, batch_size=8,
                         workers=0, threads=1, log_every=2, checkpoint_every=0, warmup_epochs=0, seed=seed,
                         val={"toy": str(faces / "pairs.csv")}, val_batch_size=16)
    train(config, progress=False)
    return out


def as_distill_run(run: Path, method: str, teacher: Path) -> None:
    """Add to config.json what a distill run records: the method and the teacher checkpoint with its hash."""
    path = run / "config.json"
    data = json.loads(path.read_text())
    data["config"] |= {"method": method, "teacher": str(teacher)}
    checkpoint = teacher / "best.pt"
    data["teacher"] = {"model": WIDE, "checkpoint": str(checkpoint), "sha256": file_sha256(checkpoint)}
    write_json_atomic(path, data)


def make_study(root: Path) -> Path:
    """root/runs: a tiny-wide teacher, tiny-test students none/kd/adv/emb, a profile of both; returns runs/."""
    threads = torch.get_num_threads()
    faces = make_faces(root / "faces")
    write_pairs_csv(faces)
    runs = root / "runs"
    teacher = train_run(faces, runs / "teacher-wide", WIDE)
    for seed, method in enumerate(("none", "kd", "adv", "emb"), start=1):
        as_distill_run(train_run(faces, runs / f"tiny-{method}", TINY, seed=seed), method, teacher)
    result = CliRunner().invoke(app, ["profile", "--models", f"{WIDE},{TINY}", "--device", "cpu", "--warmup", "1",
                                      "--iters", "3", "--threads", "1", "--out", str(runs / "profile")])
    assert result.exit_code == 0, result.output
    torch.set_num_threads(threads)
    return runs


TOY_PAIRS, TOY_FOLDS = 400, 4
TOY_ISSAME = np.tile(np.repeat([True, False], TOY_PAIRS // TOY_FOLDS // 2), TOY_FOLDS)
TOY_FOLD_IDS = np.repeat(np.arange(TOY_FOLDS), TOY_PAIRS // TOY_FOLDS)


def toy_distances(separation: float, seed: int) -> np.ndarray:
    """Squared L2 distances of TOY_ISSAME's pairs: matched ones ``separation`` lower, off the 0.01 threshold grid."""
    rng = np.random.default_rng(seed)
    distance = rng.uniform(0.5, 3.5, TOY_PAIRS) - np.where(TOY_ISSAME, separation / 2, -separation / 2)
    return np.clip(np.round(distance, 2), 0.0, 3.98) + 0.005


def write_scored_run(folder: Path, distances: np.ndarray, *, config: dict[str, Any] | None = None,
                     meta: dict[str, Any] | None = None, set_name: str = "toy") -> Path:
    """A run folder as train/distill + verify leave it, from distances alone: verify.json (row and
    ``meta.results`` from ``evaluate_distances``), scores.csv as ``write_scores_csv`` writes it, and
    config.json when ``config`` is given (a verify-only folder otherwise, with ``meta``)."""
    folder.mkdir(parents=True)
    result = evaluate_distances(distances, TOY_ISSAME, TOY_FOLD_IDS).to_dict()
    row = {"set": set_name, "n_pairs": TOY_PAIRS, "accuracy": result["accuracy"],
           "accuracy_std": result["accuracy_std"], "threshold_sq_l2": result["threshold_sq_l2"],
           "tar_at_far_1e-03": None}
    write_json_atomic(folder / "verify.json", {"rows": [row], "meta": (meta or {}) | {"results": {set_name: result}}})
    pd.DataFrame({"model": "toy", "set": set_name, "pair": np.arange(TOY_PAIRS),
                  "score": cosine_from_sq_l2(distances), "issame": TOY_ISSAME.astype(int),
                  "fold": TOY_FOLD_IDS}).to_csv(folder / "scores.csv", index=False)
    if config is not None:
        write_json_atomic(folder / "config.json", config)
    return folder


def toy_config(folder: Path, model: str, *, method: str | None = None, teacher: Path | None = None,
               seed: int = 0, **settings: Any) -> dict[str, Any]:
    """config.json of a train run, or of a distill run with ``method`` from the run folder ``teacher``."""
    config: dict[str, Any] = {"config": {"model": model, "seed": seed, "out": str(folder), "lr": 0.1} | settings}
    if method is not None and teacher is not None:
        config["config"] |= {"method": method, "teacher": str(teacher / "checkpoint.pt")}
        config["teacher"] = {"model": WIDE, "checkpoint": str(teacher / "checkpoint.pt")}
    return config
