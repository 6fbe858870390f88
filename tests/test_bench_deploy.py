"""bench --preset deploy on tiny data: every step runs, the run resumes as done, the compression table is right."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pandas as pd
import pytest
import torch
from rich.console import Console
from test_verify_cmd import write_lfw

from facebench.bench.deploy import DEPLOY, Variant, check_deploy_inputs, plan_deploy_steps
from facebench.bench.plan import run_bench
from facebench.bench.steps import DONE
from facebench.fileio import read_json
from facebench.modelspec import seeded_zoo_model
from facebench.report.deploy import LATENCY_ONLY, ORIGINAL

pytest.importorskip("onnxruntime")


@pytest.fixture(scope="module")
def deployed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list[str]]:
    """A tiny deploy bench: seeded mfn128 'pretrained' weights, the tiny LFW tree, centre crops, batches 1 and 4."""
    root = tmp_path_factory.mktemp("deploy")
    write_lfw(root / "lfw")
    torch.save(seeded_zoo_model("mfn128").state_dict(), root / "weights.pt")
    preset = dataclasses.replace(
        DEPLOY, weights=str(root / "weights.pt"), lfw=str(root / "lfw"), calib=str(root / "lfw"), detector="center",
        calib_images=12, align_workers=1, verify_batch_size=8, profile_threads=1,
        profile_batches=((1, 1, 3), (4, 1, 2)),
        variants=(DEPLOY.variants[0], DEPLOY.variants[2], DEPLOY.variants[3],
                  Variant("mobilenet-untrained", "zoo mobilenet", "torch", "fp32", LATENCY_ONLY, spec="mobilenet")),
    )  # fmt: skip
    steps = plan_deploy_steps(preset, root / "runs", root / "report")
    states = run_bench(steps, preset, root / "runs", Console(quiet=True),
                       check=lambda _: check_deploy_inputs(preset, root / "runs"))  # fmt: skip
    again = [step.state() for step in plan_deploy_steps(preset, root / "runs", root / "report")]
    return root, [*states, *again]


def test_every_step_ran_and_a_second_bench_finds_them_done(deployed: tuple[Path, list[str]]) -> None:
    _, states = deployed
    first, second = states[: len(states) // 2], states[len(states) // 2 :]
    assert set(first) == {"ran"}
    assert second[:-1] == [DONE] * (len(second) - 1)  # the report is always rebuilt


def test_compression_table_compares_each_variant_with_the_original(deployed: tuple[Path, list[str]]) -> None:
    root, _ = deployed
    table = pd.read_csv(root / "report" / "compression.csv").set_index("variant")
    original = table.loc["mfn128-torch-fp32"]
    assert original["role"] == ORIGINAL and original["delta_accuracy_pp"] == 0 and original["speedup_b1"] == 1.0
    onnx = table.loc["mfn128-onnx-fp32"]
    assert onnx["lfw_accuracy_pct"] == original["lfw_accuracy_pct"]  # the same network in another runtime
    assert onnx["speedup_b4"] == pytest.approx(original["latency_b4_ms"] / onnx["latency_b4_ms"])
    int8 = table.loc["mfn128-onnx-int8"]
    assert int8["precision"] == "int8" and int8["size_mb"] < 0.5 * onnx["size_mb"]  # int8 weights: ~1/4
    assert onnx["size_mb"] == pytest.approx((root / "runs" / "mfn128-onnx-fp32" / "model.onnx").stat().st_size / 1e6)
    latency_only = table.loc["mobilenet-untrained"]
    assert pd.isna(latency_only["lfw_accuracy_pct"]) and latency_only["latency_b1_ms"] > 0
    markdown = (root / "report" / "compression.md").read_text()
    line = next(row for row in markdown.splitlines() if row.startswith("| ONNX Runtime int8 (static QDQ)"))
    assert [cell.strip() for cell in line.strip("|").split("|")][1:3] == ["onnxruntime", "int8"]
    assert "20 pairs" in markdown


def test_table2_and_results_name_runtime_and_precision(deployed: tuple[Path, list[str]]) -> None:
    root, _ = deployed
    table2 = pd.read_csv(root / "report" / "table2.csv")
    assert set(zip(table2["runtime"], table2["dtype"])) == {("torch", "fp32"), ("onnxruntime", "fp32"),
                                                            ("onnxruntime", "int8")}  # fmt: skip
    results = read_json(root / "report" / "results.json")
    assert len(results["accuracy"]) == 3 and len(results["latency"]) == 8
    assert (root / "report" / "figure_deploy.png").stat().st_size > 0


def test_operating_points_of_every_verified_variant(deployed: tuple[Path, list[str]]) -> None:
    """Each verified variant scored every pair of the aligned photos, clean and with 24-px probes; the report's
    operating-point table reads them (12 images: 54 impostor pairs resolve no FMR of the table, so n/a)."""
    root, _ = deployed
    table = pd.read_csv(root / "report" / "operating.csv")
    assert list(zip(table["variant"], table["set"])) == [
        (variant, name) for variant in ("mfn128-torch-fp32", "mfn128-onnx-fp32", "mfn128-onnx-int8")
        for name in ("lfw-all", "lfw-all@downscale:24")]  # fmt: skip
    assert table["fnmr_fmr_1e-4_pct"].isna().all() and (table["n_impostor"] == 54).all()
    by_set = table.set_index(["variant", "set"])["rank1_pct"]
    assert by_set["mfn128-onnx-fp32", "lfw-all"] == by_set["mfn128-torch-fp32", "lfw-all"]
    markdown = (root / "report" / "compression.md").read_text()
    assert "## Operating points" in markdown and "bootstrap over identities" in markdown
    verify = read_json(root / "runs" / "mfn128-onnx-int8" / "verify.json")
    assert [row["set"] for row in verify["rows"]] == ["lfw", "lfw@downscale:24", "lfw-all", "lfw-all@downscale:24"]
    results = read_json(root / "report" / "results.json")
    assert {(e["set"], e["fmr"]) for e in results["operating_points"]} == {
        (name, fmr) for name in ("lfw-all", "lfw-all@downscale:24") for fmr in ("1e-4", "1e-5")}


REPORTS = Path(__file__).resolve().parents[1] / "reports"


def test_committed_deploy_report_rebuilds_from_the_committed_run_files(tmp_path: Path,
                                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    """reports/deploy/compression.md is what `cd reports && facebench report --runs runs/deploy` makes of
    reports/runs/deploy (the deploy bench's small files)."""
    import shutil

    from typer.testing import CliRunner

    from facebench.cli import app

    if not (REPORTS / "runs" / "deploy").is_dir():
        pytest.skip("reports/runs/deploy is not committed")
    shutil.copytree(REPORTS / "runs" / "deploy", tmp_path / "runs" / "deploy")
    monkeypatch.chdir(tmp_path)  # the table names each row's folder as runs/deploy/<variant>
    result = CliRunner().invoke(app, ["report", "--runs", "runs/deploy", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name in ("compression.md", "compression.csv", "table2.md"):
        assert (tmp_path / "out" / name).read_text() == (REPORTS / "deploy" / name).read_text(), name


def test_committed_operating_points_report_rebuilds(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """reports/operating-points (the pretrained mfn128, fp32 and int8, every pair of the aligned LFW photos) is
    what `cd reports && facebench report --runs runs/operating-points` makes, paired intervals included."""
    import shutil

    from typer.testing import CliRunner

    from facebench.cli import app

    if not (REPORTS / "runs" / "operating-points").is_dir():
        pytest.skip("reports/runs/operating-points is not committed")
    shutil.copytree(REPORTS / "runs" / "operating-points", tmp_path / "runs" / "operating-points")
    monkeypatch.chdir(tmp_path)
    result = CliRunner().invoke(app, ["report", "--runs", "runs/operating-points", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name in ("compression.md", "compression.csv", "operating.csv"):
        assert (tmp_path / "out" / name).read_text() == (REPORTS / "operating-points" / name).read_text(), name
    table = pd.read_csv(tmp_path / "out" / "operating.csv").set_index(["variant", "set"])
    int8 = table.loc["mfn128-onnx-int8", "lfw-all"]
    assert int8["n_impostor"] == 29_640_749 and int8["n_genuine"] == 8101  # every pair of LFW's 7,701 images
