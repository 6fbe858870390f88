"""End-to-end CLI: help without torch, models listing, profile files, one-line user errors."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import torch

from facebench.cli import app

PROFILE_COLUMNS = [
    "model", "device", "dtype", "batch", "threads", "params_m", "size_mb", "gmacs", "gflops",
    "latency_ms_mean", "latency_ms_std", "latency_ms_p50", "latency_ms_p95", "throughput_ips",
]  # fmt: skip


def assert_one_line_error(result, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    lines = [line for line in result.output.splitlines() if line.strip()]
    assert len(lines) == 1, result.output
    assert "Traceback" not in result.output
    for fragment in fragments:
        assert fragment in lines[0]


def test_help_does_not_import_torch() -> None:
    code = "import sys; from facebench.cli import app; assert 'torch' not in sys.modules, 'torch imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_models_json_lists_every_model_with_counts(runner) -> None:
    result = runner.invoke(app, ["models", "--format", "json", "--pattern", "ir1*"])
    assert result.exit_code == 0, result.output
    rows = {row["model"]: row for row in json.loads(result.output)}
    assert set(rows) == {"ir18", "ir100"}
    assert rows["ir100"]["gmacs"] == pytest.approx(12.1, rel=0.02)
    assert rows["ir18"]["gmacs"] == pytest.approx(2.6, rel=0.02)
    for row in rows.values():
        assert row["gflops"] == pytest.approx(2 * row["gmacs"], rel=0.02)
        assert row["size_mib"] == pytest.approx(row["size_mb"] * 1e6 / 2**20)


def test_models_csv_and_md_formats(runner) -> None:
    csv = runner.invoke(app, ["models", "--format", "csv", "--pattern", "mbf"])
    assert csv.output.splitlines()[0].startswith("model,family,feature_map,params_m,size_mb,size_mib,gmacs,gflops")
    md = runner.invoke(app, ["models", "--format", "md", "--pattern", "mbf"])
    assert md.output.splitlines()[1].startswith("|:")


def test_profile_writes_three_files_with_the_columns(runner, tmp_path) -> None:
    out = tmp_path / "prof"
    args = ["profile", "--models", "mbf,mobilenet", "--device", "cpu", "--iters", "3", "--warmup", "1"]
    result = runner.invoke(app, [*args, "--threads", "1", "--batch-size", "2", "--out", str(out)])
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "profile.csv")
    assert [c for c in frame.columns if c in PROFILE_COLUMNS] == PROFILE_COLUMNS
    assert "mem_rss_peak_growth_mb" in frame.columns
    assert frame["model"].tolist() == ["mbf", "mobilenet"]
    assert (frame["threads"] == 1).all() and (frame["batch"] == 2).all() and (frame["dtype"] == "fp32").all()
    assert frame["device"].str.startswith("cpu (").all()
    report = json.loads((out / "profile.json").read_text())
    assert report["meta"]["threads"] == 1 and report["meta"]["environment"]["torch_version"] == torch.__version__
    assert report["rows"][0]["latency_ms_mean"] == pytest.approx(frame["latency_ms_mean"][0])
    markdown = (out / "profile.md").read_text()
    assert "| mbf " in markdown and "- threads: 1" in markdown
    assert not list(out.glob(".*"))  # no temporary files left behind


def test_unknown_model_is_one_line_exit_2_and_writes_nothing(runner, tmp_path) -> None:
    result = runner.invoke(app, ["profile", "--models", "r18,resnet9000", "--out", str(tmp_path / "p")])
    assert_one_line_error(result, "--models resnet9000: not a run folder, checkpoint file or zoo model", "r18", "mobilenet")
    assert not (tmp_path / "p").exists()


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the no-GPU message")
def test_cuda_without_gpu_is_one_line_exit_2(runner, tmp_path) -> None:
    result = runner.invoke(app, ["profile", "--models", "r18", "--device", "cuda", "--out", str(tmp_path)])
    assert_one_line_error(result, "--device cuda", "use --device cpu")


def test_bad_precision_is_one_line_exit_2(runner, tmp_path) -> None:
    result = runner.invoke(app, ["profile", "--precision", "fp8", "--device", "cpu", "--out", str(tmp_path)])
    assert_one_line_error(result, "'--precision'", "'fp8' is not one of")
