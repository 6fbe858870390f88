"""Table 1's operating points: all-pairs rows of each run, KD paired with Vanilla, and what check reads."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from report_helpers import TINY, WIDE, toy_config, toy_distances, write_scored_run

from facebench.eval.identification import evaluate_identification
from facebench.eval.operating_points import operating_points, score_pairs
from facebench.eval.paired_points import pair_scores_name, save_pair_scores
from facebench.report.build import build_report


def embeddings(noise: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """The same 1,500-odd images (identities of 1-9 around fixed centres) seen by a model with ``noise``."""
    rng = np.random.default_rng(0)
    sizes = rng.integers(1, 10, 300)
    labels = np.repeat(np.arange(300), sizes)
    emb = rng.normal(size=(300, 32))[labels] + noise * np.random.default_rng(seed).normal(size=(labels.size, 32))
    return (emb / np.linalg.norm(emb, axis=1, keepdims=True)).astype(np.float32), labels


def add_all_pairs(folder: Path, noise: float, seed: int) -> dict:
    """The run's verify.json gains an all-pairs row of ``lfw-all`` and its saved scores, as verify --folders
    writes them."""
    emb, labels = embeddings(noise, seed)
    scores = score_pairs(emb, labels)
    row = {"set": "lfw-all", "protocol": "all-pairs", "degrade": None, "n_pairs": 0, "accuracy": None,
           "accuracy_std": None, **operating_points(scores, replicates=50).to_row(),
           **evaluate_identification(emb, labels).to_row()}  # fmt: skip
    verify = json.loads((folder / "verify.json").read_text())
    verify["rows"].append(row)
    (folder / "verify.json").write_text(json.dumps(verify))
    save_pair_scores(folder / pair_scores_name("lfw-all"), scores)
    return row


@pytest.fixture(scope="module")
def report(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, dict[str, dict]]:
    root = tmp_path_factory.mktemp("study")
    teacher = write_scored_run(root / "teacher", toy_distances(1.5, 9), config=toy_config(root / "teacher", WIDE))
    write_scored_run(root / "none", toy_distances(0.3, 1),
                     config=toy_config(root / "none", TINY, method="none", teacher=teacher))
    write_scored_run(root / "kd", toy_distances(2.0, 10), config=toy_config(root / "kd", TINY, method="kd",
                                                                            teacher=teacher))  # fmt: skip
    rows = {name: add_all_pairs(root / name, noise, seed)
            for name, noise, seed in (("teacher", 0.6, 1), ("none", 1.1, 2), ("kd", 0.9, 3))}
    build_report(root, root / "out")
    return root / "out", rows


def test_table1_lists_each_runs_operating_points(report) -> None:
    out, rows = report
    table = pd.read_csv(out / "table1_operating.csv")
    assert list(table["method"]) == ["Vanilla", "Vanilla", "SL KD"] and set(table["set"]) == {"lfw-all"}
    kd = table.iloc[2]
    assert kd["fnmr_fmr_1e-4_pct"] == pytest.approx(100 * rows["kd"]["fnmr_fmr_1e-4"])
    assert kd["rank1_pct"] == pytest.approx(100 * rows["kd"]["rank1"])
    expected = 100 * (rows["kd"]["fnmr_fmr_1e-4"] - rows["none"]["fnmr_fmr_1e-4"])
    assert kd["vs_vanilla_diff_at_own_threshold_pp_fmr_1e-4"] == pytest.approx(expected)
    assert kd["vs_vanilla_diff_at_own_threshold_pp_fmr_1e-4"] < 0  # less noise, fewer genuine rejections
    assert pd.isna(table.iloc[1]["vs_vanilla_diff_at_own_threshold_pp_fmr_1e-4"])  # Vanilla against itself: none
    markdown = (out / "table1.md").read_text()
    assert "## Operating points" in markdown and "bootstrap over identities" in markdown
    assert "lfw-all" not in pd.read_csv(out / "table1.csv").columns.str.cat()  # the 10-fold table keeps its sets


def test_results_name_each_run_for_check(report) -> None:
    out, _ = report
    entries = json.loads((out / "results.json").read_text())["operating_points"]
    keys = [(e["model"], e["set"], e["fmr"]) for e in entries]
    assert len(keys) == len(set(keys)) == 6
    assert all(e["fnmr_pct"] is not None for e in entries)
