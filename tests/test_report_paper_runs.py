"""A `paper`-preset runs folder written on a GPU machine reports exactly as the same runs written on a CPU one."""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
from report_helpers import toy_distances, write_scored_run

from facebench.bench.plan import plan_steps
from facebench.bench.presets import PAPER
from facebench.bench.steps import TrainingStep, VerifyStep
from facebench.report.build import build_report

GPU_RUN = {"device": "cuda", "amp": True, "amp_dtype": "bf16", "workers": 8, "threads": None}


def write_paper_runs(root: Path, gpu: bool) -> Path:
    """Every run folder `bench --preset paper` plans (one verification set), as its steps leave them: training
    runs with config.json (on a GPU: CUDA, AMP, 8 processes) and scores, untrained students verify-only."""
    preset = replace(PAPER, verify_sets={"toy": "data/pairs.csv"})
    runs = root / "runs"
    steps = plan_steps(preset, runs, root / "reports")
    trained = {s.folder: s for s in steps if isinstance(s, TrainingStep)}
    for k, step in enumerate(s for s in steps if isinstance(s, VerifyStep)):
        distances = toy_distances(0.5 + 0.1 * k, seed=k)
        if step.spec is not None:  # an untrained student: seeded random weights, verified as it comes
            meta = {"model_name": step.spec, "model_source": "untrained", "external": False, "pretrained": False,
                    "untrained": True, "device": "cuda:0" if gpu else "cpu"}
            write_scored_run(step.folder, distances, meta=meta)
            continue
        training = trained[step.folder]
        settings = training.settings | (GPU_RUN if gpu else {})
        config = {"config": settings, "world_size": 8 if gpu else 1,
                  "environment": {"device": "NVIDIA H200" if gpu else "2-core CPU"}}
        if training.kind == "distill":
            teacher = Path(settings["teacher"])
            config["teacher"] = {"model": PAPER.teacher, "checkpoint": str(teacher), "sha256": "0" * 64}
        write_scored_run(step.folder, distances, config=config, meta={"device": "cuda:0" if gpu else "cpu"})
    return runs


def test_paper_runs_from_a_gpu_machine_report_like_the_same_runs_from_a_cpu(tmp_path: Path) -> None:
    tables, folders = {}, {}
    for machine, gpu in (("gpu", True), ("cpu", False)):
        root = tmp_path / machine
        build_report(write_paper_runs(root, gpu), root / "out")
        table = pd.read_csv(root / "out" / "table1.csv")
        run_columns = [c for c in table.columns if c.startswith("run_")]
        paths = table[run_columns].fillna("")
        folders[machine] = paths.apply(lambda column, r=str(root): column.str.replace(r, "ROOT"))
        tables[machine] = table.drop(columns=run_columns)
    pd.testing.assert_frame_equal(folders["gpu"], folders["cpu"])  # the same folder behind every cell
    gpu = tables["gpu"]
    pd.testing.assert_frame_equal(gpu, tables["cpu"])
    assert gpu["model"].tolist() == ["r101 (teacher)", "mobilenet", "r18", "mobilenet (untrained)", "r18 (untrained)"]
    assert (gpu.loc[1:2, [f"toy_{m}_n_seeds" for m in ("vanilla", "kd", "adv", "emb")]] == 1).all().all()
    mobilenet_kd = json.loads((tmp_path / "gpu" / "runs" / "mobilenet-kd" / "verify.json").read_text())
    assert gpu.loc[1, "toy_kd_acc_pct"] == 100 * mobilenet_kd["rows"][0]["accuracy"]
    assert gpu.loc[1, "toy_kd_vs_vanilla_n_seed_pairs"] == 1 and not pd.isna(gpu.loc[1, "toy_kd_vs_vanilla_low_pp"])
