"""Keep glibc's malloc from handing large activation buffers back to the OS after every forward pass.

By default glibc serves large allocations (above 128 KiB, raised adaptively up to 32 MiB) with a
fresh ``mmap`` and unmaps them on free, so every forward pass of a CNN pays the kernel for
faulting in and zeroing new pages: ``verify --model mbf`` on a 2-core Xeon spent 85% as much
system time as user time (23.9 M minor page faults for 2,400 images). ``tune_allocator``
calls glibc's ``mallopt`` once at start-up (the ``MALLOC_*_`` environment variables act only
before a process starts):

- ``M_MMAP_MAX`` 0: large blocks come from the heap too, so freed activations are reused
  (a threshold alone stops at glibc's 32 MiB cap, above which batch-64 activations lie);
- ``M_TRIM_THRESHOLD`` 1 GiB: freed heap is kept for the next pass instead of trimmed away.

Measured by ``benchmarks/allocator.py`` (mbf, batch 64): about 10,000 -> under 50 minor page
faults per image. Nothing is changed where malloc is not glibc's, where jemalloc, tcmalloc or
mimalloc is already loaded (``LD_PRELOAD``), or where the user set ``MALLOC_MMAP_MAX_``,
``MALLOC_MMAP_THRESHOLD_`` or ``MALLOC_TRIM_THRESHOLD_`` (their choice wins). Freed memory
stays with the process up to 1 GiB; ``facebench.profiling.memory`` calls ``malloc_trim``
explicitly between models, which ignores the trim threshold.
"""

from __future__ import annotations

import ctypes
import os
import platform
import sys
from pathlib import Path

M_TRIM_THRESHOLD = -1  # glibc malloc.h parameter numbers
M_MMAP_MAX = -4
SETTINGS = {"M_MMAP_MAX": (M_MMAP_MAX, 0), "M_TRIM_THRESHOLD": (M_TRIM_THRESHOLD, 2**30)}
USER_VARIABLES = ("MALLOC_MMAP_MAX_", "MALLOC_MMAP_THRESHOLD_", "MALLOC_TRIM_THRESHOLD_")
OTHER_ALLOCATORS = ("jemalloc", "tcmalloc", "mimalloc")

_applied: dict[str, object] | None = None


def tune_allocator() -> dict[str, object]:
    """Apply the module's malloc settings once per process; returns what is in force (recorded in every meta).

    Keys: ``allocator`` (e.g. 'glibc 2.36', 'jemalloc (preloaded)'), ``mallopt`` (the settings
    applied: a count or bytes; empty when none were) and ``note`` (why, in words). Later calls return the
    first call's answer without touching malloc again.
    """
    global _applied
    if _applied is None:
        _applied = _tune()
    return _applied


def allocator_state() -> dict[str, object]:
    """What ``tune_allocator`` did in this process, or the untouched allocator when it was not called."""
    if _applied is not None:
        return _applied
    return {"allocator": _allocator_name(), "mallopt": {}, "note": "defaults (tune_allocator not called)"}


def _tune() -> dict[str, object]:
    """Call mallopt with SETTINGS unless the allocator is not glibc's or the user chose settings; say which."""
    name = _allocator_name()
    state: dict[str, object] = {"allocator": name, "mallopt": {}}
    if not name.startswith("glibc"):
        return state | {"note": f"left as it is: {name} is not glibc malloc"}
    user = [v for v in USER_VARIABLES if v in os.environ]
    if user:
        return state | {"note": f"left as it is: {', '.join(user)} set in the environment"}
    mallopt = ctypes.CDLL(None).mallopt
    applied = {key: value for key, (param, value) in SETTINGS.items() if mallopt(param, value) == 1}
    return state | {"mallopt": applied, "note": "large blocks reused from the heap, not mmapped anew per forward pass"}


def _allocator_name() -> str:
    """'jemalloc (preloaded)' etc. when one is mapped into the process, else 'glibc X.Y' or the C library's name."""
    if sys.platform != "linux":
        return f"{sys.platform} system malloc"
    try:
        maps = Path("/proc/self/maps").read_text()
    except OSError:
        maps = os.environ.get("LD_PRELOAD", "")
    for other in OTHER_ALLOCATORS:
        if f"lib{other}" in maps:
            return f"{other} (preloaded)"
    libc, version = platform.libc_ver()
    return f"{libc} {version}" if libc == "glibc" else (libc or "unknown libc")
