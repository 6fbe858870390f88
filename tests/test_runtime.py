"""Latency statistics, the timing loop, thread pinning, memory measurement, precision checks."""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from torch import nn

from facebench import device as device_module
from facebench.device import check_precision
from facebench.errors import FacebenchError
from facebench.profiling.memory import CpuPeakRss
from facebench.profiling.runtime import (
    RuntimeConfig,
    latency_summary,
    measure_runtime,
    pinned_threads,
    time_forward,
)

needs_cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")


class CountingSleeper(nn.Module):
    """Sleeps a fixed time per call and counts its calls."""

    def __init__(self, seconds: float) -> None:
        super().__init__()
        self.seconds = seconds
        self.calls = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.calls += 1
        time.sleep(self.seconds)
        return x


def test_latency_summary_against_hand_computed_values() -> None:
    summary = latency_summary(np.array([10.0, 20.0, 30.0, 40.0]), batch_size=8)
    assert summary["latency_ms_mean"] == 25.0
    assert summary["latency_ms_std"] == pytest.approx(np.sqrt(500 / 3))  # sum of squares 500, n-1 = 3
    assert summary["latency_ms_p50"] == 25.0
    assert summary["latency_ms_p95"] == pytest.approx(38.5)  # linear interpolation 30 + 0.85 * 10
    assert summary["throughput_ips"] == pytest.approx(8 / 0.025)


def test_time_forward_excludes_warmup_and_times_each_call() -> None:
    model = CountingSleeper(0.004)
    times_ms = time_forward(model, torch.zeros(1), warmup=3, iters=5)
    assert model.calls == 8
    assert times_ms.shape == (5,)
    assert (times_ms >= 4.0).all()  # sleep never returns early


def test_time_forward_reports_progress_per_call() -> None:
    ticks = []
    time_forward(CountingSleeper(0), torch.zeros(1), warmup=2, iters=3, on_iter=lambda: ticks.append(1))
    assert len(ticks) == 5


def test_pinned_threads_sets_and_restores() -> None:
    import cv2

    original_cv = cv2.getNumThreads()
    cv2.setNumThreads(3)
    before = torch.get_num_threads()
    with pinned_threads(1) as threads:
        assert threads == 1 == torch.get_num_threads() == cv2.getNumThreads()
    assert torch.get_num_threads() == before and cv2.getNumThreads() == 3
    cv2.setNumThreads(original_cv)
    with pytest.raises(FacebenchError):
        with pinned_threads(0):
            pass


def test_cpu_peak_rss_sees_a_50_mb_allocation() -> None:
    with CpuPeakRss() as rss:
        block = np.ones(50_000_000 // 8)  # touches every page
        del block
    if np.isnan(rss.growth_mb):
        pytest.skip("peak RSS cannot be reset on this platform")
    assert 45 <= rss.growth_mb <= 200


def test_measure_runtime_cpu_row() -> None:
    config = RuntimeConfig(torch.device("cpu"), "fp32", batch_size=2, warmup=1, iters=3, threads=1)
    row = measure_runtime(lambda: nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten()), config)
    assert set(row) == {
        "latency_ms_mean", "latency_ms_std", "latency_ms_p50", "latency_ms_p95", "throughput_ips",
        "mem_rss_peak_growth_mb",
    }  # fmt: skip
    assert row["throughput_ips"] == pytest.approx(2 / (row["latency_ms_mean"] / 1e3))


def test_unknown_precision_is_a_user_error() -> None:
    with pytest.raises(FacebenchError, match="fp32, fp16, bf16"):
        check_precision(torch.device("cpu"), "int8")


def test_precision_without_kernels_is_a_user_error(monkeypatch: pytest.MonkeyPatch) -> None:
    def no_kernel(device: torch.device, dtype: torch.dtype) -> None:
        raise RuntimeError('"slow_conv2d_cpu" not implemented for \'Half\'')

    monkeypatch.setattr(device_module, "_probe_dtype", no_kernel)
    with pytest.raises(FacebenchError, match="fp16 is not supported on cpu.*use --precision fp32"):
        check_precision(torch.device("cpu"), "fp16")


@needs_cuda
def test_measure_runtime_cuda_memory_columns() -> None:
    config = RuntimeConfig(torch.device("cuda"), "fp16", batch_size=4, warmup=2, iters=5)
    row = measure_runtime(lambda: nn.Sequential(nn.Conv2d(3, 64, 3), nn.Flatten()), config)
    weights_mb = (64 * 3 * 9 + 64) * 2 / 1e6
    assert row["mem_alloc_peak_mb"] >= weights_mb
    assert row["mem_reserved_peak_mb"] >= row["mem_alloc_peak_mb"]
    assert row["mem_process_source"] in {"nvml_pid", "nvml_device_delta", "unavailable"}
