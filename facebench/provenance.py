"""Where a number came from: software versions, hardware, time and command line."""

from __future__ import annotations

import platform
import socket
import subprocess
import sys
from datetime import datetime, timezone
from pathlib import Path

import torch

import facebench
from facebench.allocator import allocator_state
from facebench.device import cpu_name


def git_commit() -> str | None:
    """The facebench checkout's commit (with '+dirty' when modified), or None outside git."""
    root = Path(facebench.__file__).resolve().parents[1]
    try:
        commit = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"], capture_output=True, text=True, timeout=5
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(root), "status", "--porcelain", "--untracked-files=no"],
            capture_output=True, text=True, timeout=5,
        ).stdout.strip()  # fmt: skip
    except (OSError, subprocess.SubprocessError):
        return None
    return (commit + ("+dirty" if dirty else "")) if commit else None


def environment() -> dict[str, object]:
    """Versions, machine and time, recorded beside every result file."""
    gpus = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []
    return {
        "facebench_version": facebench.__version__,
        "git_commit": git_commit(),
        "torch_version": torch.__version__,
        "cuda_version": torch.version.cuda,
        "python_version": platform.python_version(),
        "platform": platform.platform(),
        "hostname": socket.gethostname(),
        "cpu": cpu_name(),
        "cpu_count": torch.multiprocessing.cpu_count(),
        "gpus": gpus,
        "allocator": allocator_state(),
        "command": " ".join(["facebench", *sys.argv[1:]]) if sys.argv else None,
        "time_utc": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }
