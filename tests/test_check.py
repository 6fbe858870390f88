"""`facebench check`: planted accuracy drops and latency growth fail, unchanged results pass."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from facebench.cli import app
from facebench.report.check import MISSING, NOT_COMPARED, OK, REGRESSION, compare

COMMITTED_BASELINE = Path(__file__).resolve().parents[1] / "reports" / "baseline.json"


def results() -> dict:
    accuracy = [
        {"model": "r18 (teacher)", "teacher": "r18 (teacher)", "method": "Vanilla", "set": "lfw",
         "accuracy_pct": 80.0, "accuracy_std_pct": 1.0, "tar_pct_at_far_1e-03": 20.0, "n_pairs": 6000, "source": "a"},
        {"model": "mobilenet", "teacher": "r18 (teacher)", "method": "ADV KD", "set": "lfw",
         "accuracy_pct": 70.0, "accuracy_std_pct": 1.5, "tar_pct_at_far_1e-03": 10.0, "n_pairs": 6000, "source": "b"},
    ]  # fmt: skip
    latency = [{"model": m, "device": "cpu (X)", "dtype": "fp32", "batch": 1, "threads": 2, "latency_ms_mean": ms,
                "latency_ms_std": 0.1, "source": "p"} for m, ms in (("r18", 40.0), ("mobilenet", 10.0))]
    return {"meta": {}, "accuracy": accuracy, "latency": latency}


def write(path: Path, data: dict) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data))
    return path


def run_check(baseline: Path, current: dict, *extra: str):
    folder = baseline.parent / "current"
    write(folder / "results.json", current)
    return CliRunner().invoke(app, ["check", "--baseline", str(baseline), "--current", str(folder), *extra])


def test_compare_statuses_at_the_tolerance_edges() -> None:
    now = copy.deepcopy(results())
    now["accuracy"][0]["accuracy_pct"] = 79.5  # exactly 0.5 pp: allowed
    now["accuracy"][1]["accuracy_pct"] = 69.4  # 0.6 pp: regression
    now["latency"][0]["latency_ms_mean"] = 50.0  # +25 %: allowed
    now["latency"][1]["latency_ms_mean"] = 12.6  # +26 %: regression
    findings = compare(results(), now, acc_tol=0.5, latency_tol=0.25)
    assert [f.status for f in findings] == [OK, REGRESSION, OK, REGRESSION]
    assert [f.change for f in findings] == ["-0.50 pp", "-0.60 pp", "+25.0 %", "+26.0 %"]
    better = copy.deepcopy(results())
    better["accuracy"][1]["accuracy_pct"] = 90.0
    better["latency"][1]["latency_ms_mean"] = 1.0
    assert all(f.status == OK for f in compare(results(), better, 0.5, 0.25))


def test_fnmr_at_an_operating_point_gates_with_its_own_tolerance(tmp_path: Path) -> None:
    def with_fnmr(values: list[float | None]) -> dict:
        data = results()
        data["operating_points"] = [{"model": "mfn", "set": "lfw-all", "fmr": fmr, "fnmr_pct": value}
                                    for fmr, value in zip(("1e-4", "1e-5", "1e-6"), values, strict=True)]
        return data

    base = with_fnmr([4.0, 9.0, None])  # 1e-6: n/a, never compared
    fnmr = [f for f in compare(base, with_fnmr([5.0, 10.5, 3.0]), 0.5, 0.25, fnmr_tol=1.0) if f.kind == "fnmr"]
    assert [(f.key, f.status, f.change) for f in fnmr] == [
        (("mfn", "lfw-all", "1e-4"), OK, "+1.00 pp"), (("mfn", "lfw-all", "1e-5"), REGRESSION, "+1.50 pp")]
    lost = [f.status for f in compare(base, with_fnmr([4.0, None, None]), 0.5, 0.25) if f.kind == "fnmr"]
    assert lost == [OK, MISSING]
    result = run_check(write(tmp_path / "baseline.json", base), with_fnmr([4.0, 12.0, None]), "--fnmr-tol", "2.5")
    assert result.exit_code == 1 and "fnmr regressions" in result.output and "+3.00 pp" in result.output


def test_missing_and_other_hardware() -> None:
    now = copy.deepcopy(results())
    del now["accuracy"][1]
    now["latency"][0]["device"] = "cuda:0 (H100)"
    del now["latency"][1]
    statuses = [(f.kind, f.status) for f in compare(results(), now, 0.5, 0.25)]
    assert statuses == [("accuracy", OK), ("accuracy", MISSING), ("latency", NOT_COMPARED), ("latency", MISSING)]


def test_cli_unchanged_passes_planted_regressions_fail(tmp_path: Path) -> None:
    baseline = write(tmp_path / "reports" / "baseline.json", results())
    ok = run_check(baseline, results())
    assert ok.exit_code == 0, ok.output
    assert "4 entries compared" in ok.output and "0 failed" in ok.output
    dropped = results()
    dropped["accuracy"][1]["accuracy_pct"] = 68.0
    failed = run_check(baseline, dropped)
    assert failed.exit_code == 1
    assert "| mobilenet | r18 (teacher) | ADV KD   | lfw   | 70.00        | 68.00       | -2.00 pp | regression |" in failed.output
    assert "1 failed" in failed.output
    slower = results()
    slower["latency"][0]["latency_ms_mean"] = 60.0
    failed = run_check(baseline, slower)
    assert failed.exit_code == 1 and "+50.0 %" in failed.output
    assert run_check(baseline, slower, "--latency-tol", "0.6").exit_code == 0


def test_update_rewrites_the_baseline(tmp_path: Path) -> None:
    baseline = write(tmp_path / "reports" / "baseline.json", results())
    slower = results()
    slower["latency"][0]["latency_ms_mean"] = 60.0
    assert run_check(baseline, slower, "--update").exit_code == 0
    assert json.loads(baseline.read_text()) == slower
    assert [p.name for p in baseline.parent.iterdir() if p.name.startswith(".")] == []  # no temp file left
    assert run_check(baseline, slower).exit_code == 0


def test_bad_baseline_is_one_line_exit_2(tmp_path: Path) -> None:
    baseline = write(tmp_path / "reports" / "baseline.json", {"accuracy": [{"model": "x"}], "latency": []})
    result = run_check(baseline, results())
    assert result.exit_code == 2
    assert "accuracy[0] lacks teacher, method, set, accuracy_pct" in result.output
    assert "Traceback" not in result.output


def test_committed_baseline(tmp_path: Path) -> None:
    """The baseline from the committed cpu-small bench run: itself passes; a planted 1 pp drop fails."""
    if not COMMITTED_BASELINE.is_file():
        pytest.skip("reports/baseline.json is not committed yet")
    data = json.loads(COMMITTED_BASELINE.read_text())
    baseline = write(tmp_path / "reports" / "baseline.json", data)
    assert run_check(baseline, data).exit_code == 0
    planted = copy.deepcopy(data)
    planted["accuracy"][0]["accuracy_pct"] -= 1.0
    assert run_check(baseline, planted).exit_code == 1
    planted = copy.deepcopy(data)
    planted["latency"][0]["latency_ms_mean"] *= 1.3
    assert run_check(baseline, planted).exit_code == 1


def test_committed_operating_points_results_gate_on_fnmr(tmp_path: Path) -> None:
    """A deploy-style results.json (reports/operating-points) is readable by check, and an int8 variant whose FNMR
    at FMR 1e-5 grew by 2 pp fails it."""
    committed = COMMITTED_BASELINE.parent / "operating-points" / "results.json"
    if not committed.is_file():
        pytest.skip("reports/operating-points is not committed")
    baseline = json.loads(committed.read_text())
    assert run_check(write(tmp_path / "baseline.json", baseline), baseline).exit_code == 0
    worse = copy.deepcopy(baseline)
    entry = next(e for e in worse["operating_points"]
                 if e["model"].startswith("ONNX Runtime int8") and e["set"] == "lfw-all" and e["fmr"] == "1e-5")
    entry["fnmr_pct"] += 2.0
    result = run_check(tmp_path / "baseline.json", worse)
    assert result.exit_code == 1 and "+2.00 pp" in result.output and "lfw-all" in result.output
