"""benchmarks/gpu_acceptance.py: its --smoke run passes every step on the CPU, so the GPU acceptance run cannot
rot while no GPU is there; a failing or hanging step is a row, never the end of the run."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from functools import partial
from pathlib import Path

import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import gpu_acceptance as acceptance  # noqa: E402  (benchmarks/gpu_acceptance.py)

SMOKE = acceptance.SMOKE
# skipped in --smoke with a reason: no CUDA (NCCL), the zoo's mfn128 or the export prerequisites not there yet
MAY_SKIP = {("train", "ddp nccl x2"), ("table2", acceptance.MFN)}


def test_smoke_run_records_every_step_ok(tmp_path: Path) -> None:
    out = tmp_path / "gpu"
    process = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_acceptance.py"), "--smoke", "--out",
                              str(out)], capture_output=True, text=True, timeout=300, check=False)  # fmt: skip
    assert process.returncode == 0, process.stdout + process.stderr
    results = json.loads((out / "results.json").read_text())
    assert results["environment"]["gpu"] == "cpu" and results["environment"]["torch"]
    steps = results["steps"]
    assert {s["group"] for s in steps} == set(acceptance.GROUPS)
    for step in steps:
        may_skip = (step["group"], step["name"]) in MAY_SKIP or step["group"] == "onnx"
        if step["status"] == acceptance.SKIPPED and may_skip:
            assert step["reason"], step
        else:
            assert step["status"] == acceptance.OK, step
    ran = {(s["group"], s["name"]): s["rows"] for s in steps if s["status"] == acceptance.OK}
    assert all(ran.values()), "every step that ran records figures"
    train = ran[("train", f"{SMOKE.train_models[0]} engine vs bare AMP")][0]
    assert train["engine_ips"] > 0 and train["bare_ips"] > 0 and train["ratio"] == pytest.approx(
        train["engine_ips"] / train["bare_ips"])
    assert ran[("train", "ddp gloo x2 (cpu)")][0]["world_size"] == 2
    distill = ran[("distill", f"{SMOKE.teacher} -> {SMOKE.students[0]}")]
    assert [r["method"] for r in distill] == ["none", "kd", "adv", "emb"] and distill[1]["vs_none"] > 0
    plan = ran[("paper", "bench --preset paper --dry-run")]
    assert plan[0]["title"] == "train teacher r101" and any(r["gpu_hours"] for r in plan)
    assert all(r["vs_plain"] for r in ran[("video", f"profile --video --batch-frames {SMOKE.batch_frames}")])
    frame = pd.read_csv(out / "results.csv")
    assert set(frame["status"]) <= {acceptance.OK, acceptance.SKIPPED} and len(frame) >= len(steps)
    summary = (out / "summary.md").read_text()
    assert "## Steps" in summary and "## Table 2" in summary and (out / "paper_plan.md").is_file()
    assert "details in" in process.stdout  # the one-screen summary at the end


def _context(tmp_path: Path) -> acceptance.Context:
    return acceptance.Context(acceptance.SMOKE, True, tmp_path, tmp_path)


def _broken(timeout: float) -> acceptance.Outcome:
    raise ValueError("this path is broken\nsecond line")


def test_a_failed_or_missing_step_is_a_row(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    steps = [acceptance.Step("g", "broken", _broken),
             acceptance.Step("g", "missing", partial(acceptance.skip, "no such thing here")),
             acceptance.Step("g", "fine", lambda timeout: acceptance.Outcome([{"x": 1}], "one row"))]  # fmt: skip
    results = [acceptance.run_step(ctx, step, 5) for step in steps]
    assert [(r.status, r.reason) for r in results] == [
        (acceptance.FAILED, "ValueError: this path is broken"), (acceptance.SKIPPED, "no such thing here"),
        (acceptance.OK, "")]  # fmt: skip
    assert results[2].rows == [{"x": 1}] and results[2].headline == "one row"


def test_a_command_past_its_limit_is_killed_and_recorded(tmp_path: Path) -> None:
    ctx = _context(tmp_path)
    step = acceptance.Step("g", "hangs", partial(ctx.run, [sys.executable, "-c", "import time; time.sleep(60)"]))
    started = time.monotonic()
    result = acceptance.run_step(ctx, step, 1)
    assert (result.status, result.reason) == (acceptance.FAILED, "timed out after 1 s")
    assert time.monotonic() - started < 10
    assert "time.sleep(60)" in (tmp_path / "logs" / "g-hangs.log").read_text()


@pytest.mark.parametrize(("output", "reason"), [
    ("Usage: facebench\n╭─ Error ─╮\n│ No such command 'export'. │\n╰─────╯\n", "No such command 'export'."),
    ("progress\nerror: --device cuda: no CUDA GPU is visible\n", "error: --device cuda: no CUDA GPU is visible"),
    ("Traceback (most recent call last):\n  File x\nRuntimeError: boom\n", "RuntimeError: boom"),
    ("[rank1]: error: LOCAL_RANK 1 but only 1 GPU(s)\n", "[rank1]: error: LOCAL_RANK 1 but only 1 GPU(s)"),
    ("", "exit code 3"),
])  # fmt: skip
def test_failure_reason_is_the_line_that_says_why(output: str, reason: str) -> None:
    assert acceptance.failure_reason(output, 3) == reason
