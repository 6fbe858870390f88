"""``facebench profile`` on screen: an 80-column table with whole numbers, and warnings when timing is doubtful."""

from __future__ import annotations

import io
import json
import os

import pytest
from rich.console import Console

from facebench.cli.app import app
from facebench.cli.profile_cmd import _rich_table
from facebench.profiling.runtime import LOAD_SLACK, load_warning, spread_warning

ROW = {"model": "r101", "params_m": 65.158, "gmacs": 12.127, "latency_ms_mean": 4410.23, "latency_ms_std": 5012.7,
       "latency_ms_p50": 3987.1, "throughput_ips": 0.23, "mem_rss_peak_growth_mb": 1434.6}
META = {"device": "cpu (Intel(R) Xeon(R) Platinum 8481C CPU @ 2.70GHz)", "dtype": "fp32", "batch_size": 64,
        "threads": 2}


def render(rows: list[dict], width: int = 80) -> str:
    console = Console(width=width, file=io.StringIO(), color_system=None)
    console.print(_rich_table(rows, META))
    return console.file.getvalue()


def test_table_fits_80_columns_with_every_number_whole() -> None:
    rows = [ROW, {**ROW, "model": "runs/cpu-small/mobilenet-kd", "params_m": None, "gmacs": None,
                  "latency_ms_mean": 160.123, "latency_ms_std": 26.14, "latency_ms_p50": 158.3, "throughput_ips": 399.7,
                  "mem_rss_peak_growth_mb": 12.0}]
    text = render(rows)
    assert "…" not in text
    assert max(len(line) for line in text.splitlines()) <= 80
    flat = " ".join(text.split())
    for number in ("65.16", "12.127", "4410 ± 5013", "3987", "0.23", "1435", "160.1 ± 26.14", "158.3", "399.7", "n/a"):
        assert number in flat, number
    assert "peak RSS" in text and "growth MB" in text and "mem_rss" not in text


def test_spread_warning() -> None:
    assert spread_warning(ROW).startswith("r101: latency std 5012.70 ms > a third of the mean 4410.23 ms")
    assert spread_warning({**ROW, "latency_ms_std": ROW["latency_ms_mean"] / 4}) == ""


def test_load_warning_counts_free_cores() -> None:
    state = {"load_avg_1m": 1.0, "cpu_mhz": None, "usable_cores": 4}
    assert load_warning(state, state, threads=2) == ""  # 2 cores free, load 1
    busy = {**state, "load_avg_1m": 2 + LOAD_SLACK + 0.1}
    assert "load average 2.60 before" in load_warning(busy, state, threads=2)
    assert load_warning(state, {**state, "load_avg_1m": 4.7}, threads=2) != ""  # others joined during timing
    assert load_warning({**state, "load_avg_1m": None}, state, threads=2) == ""  # no load average on this OS


@pytest.mark.parametrize("load", [0.0, 50.0])
def test_cli_records_load_and_warns(runner, tmp_path, monkeypatch: pytest.MonkeyPatch, load: float) -> None:
    monkeypatch.setattr(os, "getloadavg", lambda: (load, load, load))
    out = tmp_path / "p"
    args = ["profile", "--models", "mobilenet", "--device", "cpu", "--iters", "3", "--warmup", "1", "--threads", "1"]
    result = runner.invoke(app, [*args, "--out", str(out)])
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "profile.json").read_text())["meta"]
    assert meta["machine"]["before_timing"]["load_avg_1m"] == load
    assert meta["machine"]["after_timing"]["load_avg_1m"] == load
    assert "cpu_mhz" in meta["machine"]["before_timing"]
    load_lines = [w for w in meta["warnings"] if w.startswith("load average")]
    printed = " ".join(result.output.split())
    if load:
        assert len(load_lines) == 1 and "warning: load average 50.00 before" in printed
    else:
        assert load_lines == [] and "load average" not in printed
