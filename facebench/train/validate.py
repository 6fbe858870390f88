"""In-loop verification: ``--val NAME=PATH`` pairs sets scored through ``facebench verify``'s own code.

Each validation embeds the sets with the model being trained and writes the same files
``facebench verify`` writes (verify.json/.md/.csv, scores.csv, roc.png, scores.png) into
the run folder, so they always describe the last validation. ``--val-folds k`` keeps only
the first k folds of each set (whole folds, so the k-fold protocol stays intact), which
makes validation affordable inside a CPU training budget.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from facebench.data import PairSet
from facebench.eval.verify import score_pair_sets, write_outputs
from facebench.modelspec import ResolvedModel

REPORTED = ("accuracy", "accuracy_std", "eer", "roc_auc")
REPORTED_FAR = "1e-03"  # TAR@FAR reported per validation


class PairsValidator:
    """Scores the model on pairs sets; the first set's accuracy is the ``score`` best.pt is kept by."""

    def __init__(self, sets: list[PairSet], run_dir: Path, model_name: str, *, align: str, device: torch.device,
                 batch_size: int, flip: bool) -> None:
        self.sets = sets
        self.run_dir = run_dir
        self.model_name = model_name
        self.align = align
        self.device = device
        self.batch_size = batch_size
        self.flip = flip

    def __call__(self, model: nn.Module, step: int, epoch: int) -> dict[str, float]:
        from facebench.device import device_name

        resolved = ResolvedModel(model, self.model_name, f"{self.run_dir} step {step}", untrained=False)
        scored = score_pair_sets(resolved, self.sets, align=self.align, device=self.device,
                                 batch_size=self.batch_size, flip=self.flip, progress=False)
        settings = {"device": device_name(self.device), "batch_size": self.batch_size, "flip": self.flip,
                    "align": self.align, "step": step, "epoch": epoch}
        write_outputs(self.run_dir, scored, resolved, settings)
        values: dict[str, float] = {}
        for item in scored:
            for key in REPORTED:
                values[f"{item.name}_{key}"] = float(getattr(item.result, key))
            tar = item.result.tar_at_far[REPORTED_FAR]
            values[f"{item.name}_tar_at_far_{REPORTED_FAR}"] = float("nan") if tar is None else float(tar)
        values["score"] = values[f"{scored[0].name}_accuracy"]
        return values
