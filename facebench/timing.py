"""Wall-clock timing of repeated calls: warm-up excluded, each call timed on its own.

Shared by the profiler (torch modules) and external models (whose network is not a torch
module), so both are timed by the same rule.
"""

from __future__ import annotations

import time
from collections.abc import Callable

import numpy as np

from facebench.errors import FacebenchError


def no_sync() -> None:
    """CPU forward passes are synchronous."""


def time_calls(
    call: Callable[[], object],
    *,
    warmup: int,
    iters: int,
    on_iter: Callable[[], None] | None = None,
    sync: Callable[[], None] = no_sync,
) -> np.ndarray:
    """Milliseconds of each of ``iters`` timed ``call()``s, after ``warmup`` untimed ones.

    ``sync`` waits for queued device work, so each time covers the whole call (also used
    for external models, whose network is not a torch module).
    """
    if iters < 1 or warmup < 0:
        raise FacebenchError(f"--iters must be >= 1 and --warmup >= 0 (got {iters}, {warmup})")
    times_ms = np.empty(iters)
    for _ in range(warmup):
        call()
        if on_iter:
            on_iter()
    sync()
    for i in range(iters):
        start = time.perf_counter()
        call()
        sync()
        times_ms[i] = (time.perf_counter() - start) * 1e3
        if on_iter:
            on_iter()
    return times_ms
