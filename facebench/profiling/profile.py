"""The study's Table 2 for any zoo models: static counts plus measured latency and memory."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import torch

from facebench.device import device_name
from facebench.models import create_model, model_spec
from facebench.profiling.memory import nvml_device_used_mb
from facebench.profiling.runtime import RuntimeConfig, measure_runtime
from facebench.profiling.static import static_metrics

DEFAULT_MODELS = ("r101", "r18", "mobilenet")  # the study's teacher and students


def profile_models(
    names: Sequence[str],
    config: RuntimeConfig,
    on_model_start: Callable[[str, int], None] | None = None,
    on_iter: Callable[[], None] | None = None,
) -> list[dict[str, Any]]:
    """One result row per model: settings, static metrics, latency and memory.

    All names are validated before any work starts. ``on_model_start(name, total_iters)``
    and ``on_iter()`` drive a progress display.
    """
    for name in names:
        model_spec(name)
    baseline_mb = nvml_device_used_mb(config.device) if config.device.type == "cuda" else float("nan")
    threads = config.threads if config.threads is not None else torch.get_num_threads()
    rows = []
    for name in names:
        static = static_metrics(create_model(name))
        if on_model_start:
            on_model_start(name, config.warmup + config.iters)
        runtime = measure_runtime(lambda: create_model(name), config, on_iter, baseline_mb)
        rows.append(
            {
                "model": name,
                "device": device_name(config.device),
                "dtype": config.precision,
                "batch": config.batch_size,
                "threads": threads,
                "channels_last": config.channels_last,
                **static.as_dict(),
                **runtime,
            }
        )
    return rows
