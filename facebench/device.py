"""Resolve ``--device`` and ``--precision`` choices and describe the hardware a number was measured on."""

from __future__ import annotations

import os
import platform
from functools import lru_cache
from pathlib import Path

import torch
from torch import nn

from facebench.choices import DEVICE_CHOICES, PRECISION_CHOICES
from facebench.errors import FacebenchError

PRECISIONS: dict[str, torch.dtype] = dict(zip(PRECISION_CHOICES, (torch.float32, torch.float16, torch.bfloat16),
                                              strict=True))


def resolve_device(choice: str) -> torch.device:
    """'auto' -> CUDA when available else CPU; 'cuda[:i]' without a GPU -> FacebenchError."""
    if choice == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if choice == "cpu":
        return torch.device("cpu")
    if choice == "cuda" or choice.startswith("cuda:"):
        if not torch.cuda.is_available():
            raise FacebenchError(
                f"--device {choice}: no CUDA GPU is visible to torch {torch.__version__}; "
                "use --device cpu (or auto)"
            )
        device = torch.device(choice)
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise FacebenchError(
                f"--device {choice}: only {torch.cuda.device_count()} GPU(s) visible; "
                f"use an index below {torch.cuda.device_count()}"
            )
        return device
    raise FacebenchError(f"--device {choice!r} is not one of: {', '.join(DEVICE_CHOICES)}, cuda:N")


def usable_cores() -> int:
    """CPU cores this process may run on (its affinity mask, where the OS has one)."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


@lru_cache(maxsize=None)
def cpu_name() -> str:
    """The CPU model string from /proc/cpuinfo, or platform's best guess."""
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        for line in cpuinfo.read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    return platform.processor() or platform.machine()


@lru_cache(maxsize=None)
def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags from /proc/cpuinfo ('avx512_vnni', 'amx_int8', ...); empty where it is unreadable."""
    cpuinfo = Path("/proc/cpuinfo")
    text = cpuinfo.read_text() if cpuinfo.is_file() else ""
    line = next((x for x in text.splitlines() if x.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


# the CPU features a CPU speed ratio depends on (vector width, int8 dot products, bf16, AMX tiles): benchmarks print them
ACCELERATION_FLAGS = ("avx2", "fma", "avx512f", "avx512_vnni", "avx_vnni", "avx512_bf16", "amx_tile", "amx_int8",
                      "amx_bf16")  # fmt: skip


def acceleration_flags() -> dict[str, bool]:
    """Which of ACCELERATION_FLAGS the CPU has (all False where /proc/cpuinfo is unreadable)."""
    listed = cpu_flags()
    return {flag: flag in listed for flag in ACCELERATION_FLAGS}


def flags_text(flags: dict[str, bool]) -> str:
    """Flags as 'avx2 yes, fma yes, avx512f no, ...'."""
    return ", ".join(f"{flag} {'yes' if on else 'no'}" for flag, on in flags.items())


def device_name(device: torch.device) -> str:
    """Human-readable hardware name: 'cpu (<model>)' or 'cuda:0 (<GPU name>)'."""
    if device.type == "cuda":
        index = device.index if device.index is not None else torch.cuda.current_device()
        return f"cuda:{index} ({torch.cuda.get_device_name(index)})"
    return f"cpu ({cpu_name()})"


def check_precision(device: torch.device, precision: str) -> torch.dtype:
    """The torch dtype for ``precision`` after checking that ``device`` runs it (FacebenchError if not)."""
    if precision not in PRECISIONS:
        raise FacebenchError(f"--precision {precision!r} is not one of: {', '.join(PRECISIONS)}")
    dtype = PRECISIONS[precision]
    if device.type == "cuda" and dtype == torch.bfloat16 and not torch.cuda.is_bf16_supported():
        name = torch.cuda.get_device_name(device)
        raise FacebenchError(f"--precision bf16: {name} does not support bfloat16; use fp16 or fp32")
    try:
        _probe_dtype(device, dtype)
    except (RuntimeError, NotImplementedError) as exc:
        first_line = str(exc).splitlines()[0]
        raise FacebenchError(
            f"--precision {precision} is not supported on {device.type} by torch {torch.__version__} "
            f"({first_line}); use --precision fp32"
        ) from None
    return dtype


def _probe_dtype(device: torch.device, dtype: torch.dtype) -> None:
    """Run the layer types the zoo uses once in ``dtype``; raises when the backend lacks a kernel."""
    probe = nn.Sequential(nn.Conv2d(3, 4, 3, groups=1), nn.BatchNorm2d(4), nn.PReLU(4), nn.Flatten(), nn.LazyLinear(2))
    with torch.inference_mode():
        probe(torch.zeros(1, 3, 8, 8))  # materialise the lazy layer in fp32 first
        probe.to(device=device, dtype=dtype).eval()(torch.zeros(1, 3, 8, 8, device=device, dtype=dtype))
