"""Latency and memory of one model's forward pass, measured the same way for every model.

Rules: weights and input are on the device in the measured dtype before timing; warm-up
iterations are excluded; everything runs under ``torch.inference_mode``; on CUDA the
device is synchronised after each forward so a time covers the whole kernel queue; the CPU
thread count is pinned for the run and recorded. Each iteration is timed on its own with
``time.perf_counter`` so the spread (std, p95) is real, not averaged away.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn

from facebench.device import check_precision
from facebench.errors import FacebenchError
from facebench.input_spec import random_input
from facebench.profiling.memory import CpuPeakRss, cuda_peak_reset, cuda_peaks_mb, nvml_process_mb
from facebench.timing import no_sync, time_calls


@dataclass(frozen=True)
class RuntimeConfig:
    """How a forward pass is timed; every field is recorded beside the result."""

    device: torch.device
    precision: str = "fp32"
    batch_size: int = 1
    warmup: int = 20
    iters: int = 100
    threads: int | None = None  # CPU intra-op threads; None keeps torch's default
    channels_last: bool = False


@contextmanager
def pinned_threads(threads: int | None) -> Iterator[int]:
    """Set torch's CPU intra-op thread count, and OpenCV's (resizes, warps), for the block
    (both restored after); yields torch's count in force."""
    import cv2

    previous, previous_cv = torch.get_num_threads(), cv2.getNumThreads()
    if threads is not None:
        if threads < 1:
            raise FacebenchError(f"--threads must be >= 1, got {threads}")
        torch.set_num_threads(threads)
        cv2.setNumThreads(threads)
    try:
        yield torch.get_num_threads()
    finally:
        torch.set_num_threads(previous)
        cv2.setNumThreads(previous_cv)


def time_forward(
    model: nn.Module,
    x: torch.Tensor,
    *,
    warmup: int,
    iters: int,
    on_iter: Callable[[], None] | None = None,
) -> np.ndarray:
    """Milliseconds of each of ``iters`` timed forward passes of ``x``, after ``warmup`` untimed ones."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else no_sync
    with torch.inference_mode():
        return time_calls(lambda: model(x), warmup=warmup, iters=iters, on_iter=on_iter, sync=sync)


def latency_summary(times_ms: np.ndarray, batch_size: int) -> dict[str, float]:
    """Mean, sample std (ddof=1), median, p95 in ms and images/s from per-iteration times."""
    mean = float(times_ms.mean())
    return {
        "latency_ms_mean": mean,
        "latency_ms_std": float(times_ms.std(ddof=1)) if times_ms.size > 1 else 0.0,
        "latency_ms_p50": float(np.percentile(times_ms, 50)),
        "latency_ms_p95": float(np.percentile(times_ms, 95)),
        "throughput_ips": batch_size / (mean / 1e3),
    }


def measure_runtime(
    build_model: Callable[[], nn.Module],
    config: RuntimeConfig,
    on_iter: Callable[[], None] | None = None,
    gpu_used_baseline_mb: float = float("nan"),
) -> dict[str, float | str]:
    """Latency summary and memory columns for the model ``build_model()`` returns.

    The model is built inside the memory window, so CPU RSS growth and the CUDA allocator
    peak both count weights plus activations. ``gpu_used_baseline_mb`` (NVML device memory
    in use before this process touched the GPU) is the fallback for the process column.
    """
    dtype = check_precision(config.device, config.precision)
    memory_format = torch.channels_last if config.channels_last else torch.contiguous_format
    x = random_input(config.batch_size).to(config.device, dtype).contiguous(memory_format=memory_format)
    with pinned_threads(config.threads):
        if config.device.type == "cuda":
            cuda_peak_reset(config.device)
            times_ms = _build_and_time(build_model, x, config, dtype, memory_format, on_iter)
            memory = cuda_peaks_mb(config.device)
            process_mb, source = nvml_process_mb(config.device, gpu_used_baseline_mb)
            memory |= {"mem_process_mb": process_mb, "mem_process_source": source}
        else:
            with CpuPeakRss() as rss:
                times_ms = _build_and_time(build_model, x, config, dtype, memory_format, on_iter)
            memory = {"mem_rss_peak_growth_mb": rss.growth_mb}
    return {**latency_summary(times_ms, config.batch_size), **memory}


def _build_and_time(
    build_model: Callable[[], nn.Module],
    x: torch.Tensor,
    config: RuntimeConfig,
    dtype: torch.dtype,
    memory_format: torch.memory_format,
    on_iter: Callable[[], None] | None,
) -> np.ndarray:
    model = build_model().eval().to(device=config.device, dtype=dtype, memory_format=memory_format)
    return time_forward(model, x, warmup=config.warmup, iters=config.iters, on_iter=on_iter)
