"""Memory measurements, one labelled kind per column, never mixed.

- CPU: ``mem_rss_peak_growth_mb``, the process's peak resident set size during the run
  minus its resident size just before it (Linux: VmHWM reset through /proc/self/clear_refs).
- CUDA: ``mem_alloc_peak_mb`` (allocator peak: weights + activations, comparable across
  models), ``mem_reserved_peak_mb`` (what the caching allocator held) and ``mem_process_mb``
  (NVML: the whole process on the GPU, CUDA context and library workspaces included).
MB is 10^6 bytes everywhere in facebench.
"""

from __future__ import annotations

import ctypes
import gc
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

BYTES_PER_MB = 1e6
_PROC_STATUS = Path("/proc/self/status")
_PROC_CLEAR_REFS = Path("/proc/self/clear_refs")


def _proc_status_kb(field: str) -> int | None:
    """A 'kB' field of /proc/self/status (VmRSS, VmHWM), or None off Linux."""
    try:
        for line in _PROC_STATUS.read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


class CpuPeakRss:
    """Peak RSS growth over a ``with`` block, in MB; ``growth_mb`` is NaN where it can't be measured."""

    def __init__(self) -> None:
        self.growth_mb = float("nan")
        self._baseline_kb: int | None = None

    def __enter__(self) -> CpuPeakRss:
        gc.collect()
        _release_freed_heap()
        self._baseline_kb = _proc_status_kb("VmRSS")
        try:
            _PROC_CLEAR_REFS.write_text("5")  # "5" resets the peak RSS (VmHWM) to the current RSS
        except OSError:
            self._baseline_kb = None  # without a reset, the lifetime peak would be misreported
        return self

    def __exit__(self, *exc: object) -> None:
        peak_kb = _proc_status_kb("VmHWM")
        if self._baseline_kb is not None and peak_kb is not None:
            self.growth_mb = (peak_kb - self._baseline_kb) * 1024 / BYTES_PER_MB


def _release_freed_heap() -> None:
    """Return freed heap pages to the OS (glibc ``malloc_trim``), so a model measured after
    another one cannot reuse the first one's freed memory and look smaller."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: the growth may be understated after earlier models, never overstated


def cuda_peak_reset(device: torch.device) -> None:
    """Free cached blocks and reset the allocator's peak counters before a measurement."""
    gc.collect()
    torch.cuda.empty_cache()
    torch.cuda.reset_peak_memory_stats(device)


def cuda_peaks_mb(device: torch.device) -> dict[str, float]:
    """Allocator peaks since the last ``cuda_peak_reset``."""
    return {
        "mem_alloc_peak_mb": torch.cuda.max_memory_allocated(device) / BYTES_PER_MB,
        "mem_reserved_peak_mb": torch.cuda.max_memory_reserved(device) / BYTES_PER_MB,
    }


def nvml_device_used_mb(device: torch.device) -> float:
    """Memory in use on the whole GPU per NVML (all processes), MB; NaN without NVML.

    Read it before this process first touches the GPU to get the baseline that
    ``nvml_process_mb`` falls back to.
    """
    with _nvml() as nvml:
        if nvml is None:
            return float("nan")
        try:
            return nvml.nvmlDeviceGetMemoryInfo(_nvml_handle(nvml, device)).used / BYTES_PER_MB
        except nvml.NVMLError:
            return float("nan")


def nvml_process_mb(device: torch.device, device_used_baseline_mb: float) -> tuple[float, str]:
    """GPU memory of this whole process (CUDA context and workspaces included), MB, and its source.

    'nvml_pid' when NVML lists this PID on the device. Inside containers NVML may list host
    PIDs, so it falls back to 'nvml_device_delta': device memory in use now minus
    ``device_used_baseline_mb`` (which also counts other processes' changes meanwhile).
    (NaN, 'unavailable') without NVML.
    """
    with _nvml() as nvml:
        if nvml is None:
            return float("nan"), "unavailable"
        try:
            handle = _nvml_handle(nvml, device)
            for proc in nvml.nvmlDeviceGetComputeRunningProcesses(handle):
                if proc.pid == os.getpid() and proc.usedGpuMemory is not None:
                    return proc.usedGpuMemory / BYTES_PER_MB, "nvml_pid"
            used_mb = nvml.nvmlDeviceGetMemoryInfo(handle).used / BYTES_PER_MB
        except nvml.NVMLError:
            return float("nan"), "unavailable"
        return used_mb - device_used_baseline_mb, "nvml_device_delta"


@contextmanager
def _nvml() -> Iterator[Any]:
    """The initialised ``pynvml`` module, or None when there is no NVML library or driver."""
    try:
        import pynvml

        pynvml.nvmlInit()
    except Exception:  # noqa: BLE001  (no library, no driver: the NVML columns are unavailable)
        yield None
        return
    try:
        yield pynvml
    finally:
        pynvml.nvmlShutdown()


def _nvml_handle(nvml: Any, device: torch.device) -> Any:
    """NVML handle of a torch CUDA device, matched by UUID so CUDA_VISIBLE_DEVICES is respected."""
    index = device.index if device.index is not None else torch.cuda.current_device()
    uuid = getattr(torch.cuda.get_device_properties(index), "uuid", None)
    if uuid is not None:
        try:
            return nvml.nvmlDeviceGetHandleByUUID(f"GPU-{uuid}")
        except nvml.NVMLError:
            pass
    return nvml.nvmlDeviceGetHandleByIndex(index)
