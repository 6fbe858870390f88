"""benchmarks/runtimes.py --quick end to end: every variant timed at every batch, ratios against torch fp32."""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "runtimes.py"
REQUIRED = {"torch-fp32", "ort-fp32", "ort-int8", "ort-int8-dynamic", "openvino-fp32", "openvino-int8"}
OPTIONAL = {"torch-bf16", "torch-fp16"}  # where the device runs them


@pytest.mark.skipif(not all(importlib.util.find_spec(m) for m in ("onnxruntime", "openvino")),
                    reason="needs onnxruntime and openvino")  # fmt: skip
def test_quick_run_times_every_variant(tmp_path: Path) -> None:
    # one thread: the test checks the plumbing, and a busy 2-core machine stalls multi-threaded torch
    subprocess.run([sys.executable, str(SCRIPT), "--quick", "--threads", "1", "--out", str(tmp_path)], check=True,
                   timeout=300)  # fmt: skip
    result = json.loads((tmp_path / "runtimes.json").read_text())
    variants = set(result["variants"])
    assert REQUIRED <= variants <= REQUIRED | OPTIONAL
    assert result["threads"] == 1 and result["cpu"] and set(result["versions"]) == {"torch", "onnxruntime", "openvino"}
    timed = {(row["variant"], row["batch"]): row for row in result["rows"]}
    assert set(timed) == {(variant, batch) for variant in variants for batch in (1, 4)}
    for row in timed.values():
        assert row["latency_ms_mean"] > 0 and row["speedup"] > 0 and len(row["times_ms"]) == 2
    assert all(timed[("torch-fp32", batch)]["speedup"] == 1.0 for batch in (1, 4))
    assert (tmp_path / "runtimes.md").read_text().startswith("# Deployment runtimes")
