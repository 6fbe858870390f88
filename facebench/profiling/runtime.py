"""Latency and memory of one model's forward pass, measured the same way for every model.

Rules: weights and input are on the device in the measured dtype before timing; warm-up
iterations are excluded; everything runs under ``torch.inference_mode``; on CUDA the
device is synchronised after each forward so a time covers the whole kernel queue; the CPU
thread count is pinned for the run and recorded. Each iteration is timed on its own with
``time.perf_counter`` so the spread (std, p95) is real, not averaged away.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facebench.device import check_precision, usable_cores
from facebench.errors import FacebenchError
from facebench.input_spec import random_input
from facebench.profiling.memory import CpuPeakRss, cuda_peak_reset, cuda_peaks_mb, nvml_process_mb
from facebench.timing import no_sync, time_calls

LOAD_SLACK = 0.5  # load average beyond the cores a run leaves free that counts as competing for its cores
SPREAD_LIMIT = 1 / 3  # std above this fraction of the mean: the times are too spread to trust the mean
_CPUFREQ = Path("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
_CPUINFO = Path("/proc/cpuinfo")


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


def machine_state() -> dict[str, float | int | None]:
    """1-minute load average (None where the OS has none), CPU clock in MHz (cpufreq of cpu0, else the mean
    of /proc/cpuinfo 'cpu MHz'; None where neither is readable) and the cores this process may use."""
    try:
        load: float | None = round(os.getloadavg()[0], 2)
    except OSError:
        load = None
    return {"load_avg_1m": load, "cpu_mhz": _cpu_mhz(), "usable_cores": usable_cores()}


def _cpu_mhz() -> float | None:
    try:
        return round(int(_CPUFREQ.read_text()) / 1e3, 1)
    except (OSError, ValueError):
        pass
    try:
        mhz = [float(line.split(":")[1]) for line in _CPUINFO.read_text().splitlines() if line.startswith("cpu MHz")]
    except (OSError, ValueError, IndexError):
        return None
    return round(sum(mhz) / len(mhz), 1) if mhz else None


def load_warning(before: dict, after: dict, threads: int) -> str:
    """One line when other jobs competed for the run's cores, else ''.

    ``before``/``after`` are ``machine_state()`` around all timing. Competing: the load average
    before timing exceeded the cores the run leaves free (cores - threads) by more than
    LOAD_SLACK, or after timing (the run's own threads included) exceeded all cores by more.
    """
    cores, free = before["usable_cores"], max(before["usable_cores"] - threads, 0)
    load_before, load_after = before["load_avg_1m"], after["load_avg_1m"]
    if load_before is None or load_after is None:
        return ""
    if load_before <= free + LOAD_SLACK and load_after <= cores + LOAD_SLACK:
        return ""
    return (f"load average {load_before:.2f} before / {load_after:.2f} after timing, {cores} cores, {threads} "
            "threads: other jobs competed; compare p50")


def spread_warning(row: dict) -> str:
    """One line when ``row``'s std exceeds SPREAD_LIMIT of its mean latency, else ''."""
    mean, std = row["latency_ms_mean"], row["latency_ms_std"]
    if not std > SPREAD_LIMIT * mean:
        return ""
    return f"{row['model']}: latency std {std:.2f} ms > a third of the mean {mean:.2f} ms; compare p50"
