"""The study's Table 2 for any zoo, deployed or external models: static counts plus measured latency and memory.

Every row names its runtime (torch, onnxruntime, openvino, or an external model's library)
and precision. A deployed file's counts are those of the zoo architecture it was exported
from (its sidecar names it; operations do not change with precision), n/a for a foreign
file; its size is the file on disk. A torch row's size is its state_dict in the row's dtype.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch

from facebench.deploy import DeployedModel
from facebench.device import PRECISIONS, device_name, usable_cores
from facebench.errors import FacebenchError
from facebench.external import external_spec, load_external
from facebench.models import create_model
from facebench.modelspec import ModelOptions, ModelRecipe, model_recipe
from facebench.profiling.memory import CpuPeakRss, nvml_device_used_mb
from facebench.profiling.runtime import (
    RuntimeConfig,
    latency_summary,
    load_warning,
    machine_state,
    measure_runtime,
    spread_warning,
)
from facebench.profiling.static import BYTES_PER_MB, BYTES_PER_MIB, state_dict_bytes, static_metrics
from facebench.runfolder import RunFolder

DEFAULT_MODELS = ("r101", "r18", "mobilenet")  # the study's teacher and students
EXTERNAL_NOTE = (
    "external models run in their own library: latency of the network alone on random aligned face crops of its "
    "input size (detector and landmarks excluded, as for zoo models); device, dtype and threads are the "
    "library's; size_mb is its network file; params_m, gmacs and gflops n/a (the library exposes no layers to count)"
)


def profile_models(
    names: Sequence[str],
    config: RuntimeConfig,
    on_model_start: Callable[[str, int], None] | None = None,
    on_iter: Callable[[], None] | None = None,
    options: ModelOptions = ModelOptions(),
) -> list[dict[str, Any]]:
    """One result row per model: settings, static metrics, latency and memory.

    ``names`` are model specs (``facebench.modelspec``: zoo names, run folders, checkpoint
    files, external models), all read and checked before any work starts. Latency and
    counts do not depend on the weights, so a zoo name (seeded random weights) measures
    its architecture. ``on_model_start(name, total_iters)`` and ``on_iter()`` drive a
    progress display. ``options`` (--weights, --runtime, --input-*) apply to every name.
    """
    recipes = [model_recipe(name, "--models", options) for name in names]
    for name, recipe in zip(names, recipes, strict=True):
        if recipe.runtime == "torch":
            continue
        if config.precision != "fp32" or config.channels_last:
            raise FacebenchError(f"{name} runs in its own precision without channels-last; profile it without "
                                 "--precision and --channels-last")  # fmt: skip
        if recipe.external:
            load_external(name)  # not installed -> one line saying how, before any work
    baseline_mb = nvml_device_used_mb(config.device) if config.device.type == "cuda" else float("nan")
    threads = config.threads if config.threads is not None else torch.get_num_threads()
    rows = []
    for name, recipe in zip(names, recipes, strict=True):
        before = machine_state()
        if recipe.external:
            row = profile_external(name, config, on_model_start, on_iter)
        else:
            row = _profile_torch(name, recipe, config, threads, on_model_start, on_iter, baseline_mb)
        after = machine_state()
        rows.append(row | {f"{key}_{when}": state[key] for when, state in (("before", before), ("after", after))
                           for key in ("load_avg_1m", "cpu_mhz")} | {"timing_warning": spread_warning(row)})
    return rows


def _profile_torch(
    name: str,
    recipe: ModelRecipe,
    config: RuntimeConfig,
    threads: int,
    on_model_start: Callable[[str, int], None] | None,
    on_iter: Callable[[], None] | None,
    baseline_mb: float,
) -> dict[str, Any]:
    """The row of a zoo, checkpoint or deployed model: settings, counts, latency and memory."""
    static, runtime_name, precision = _static_row(recipe, config)
    if on_model_start:
        on_model_start(name, config.warmup + config.iters)
    runtime = measure_runtime(recipe.build, config, on_iter, baseline_mb)
    return {
        "model": name,
        "runtime": runtime_name,
        "device": device_name(config.device),
        "dtype": precision,
        "batch": config.batch_size,
        "threads": threads,
        "channels_last": config.channels_last,
        **static,
        **runtime,
    }


def _static_row(recipe: ModelRecipe, config: RuntimeConfig) -> tuple[dict[str, float | None], str, str]:
    """(counts and size, runtime, precision) of a torch or deployed model (module docstring)."""
    model = recipe.build()
    if not isinstance(model, DeployedModel):
        static = static_metrics(model).as_dict()
        if config.precision != "fp32":
            size = state_dict_bytes(model.to(PRECISIONS[config.precision]))
            static |= {"size_mb": size / BYTES_PER_MB, "size_mib": size / BYTES_PER_MIB}
        return static, "torch", config.precision
    counts: dict[str, float | None] = {"params_m": None, "gmacs": None, "gflops": None}
    if recipe.architecture is not None:
        source = static_metrics(create_model(recipe.architecture, embedding_size=model.embedding_size))
        counts = {"params_m": source.params_m, "gmacs": source.gmacs, "gflops": source.gflops}
    size = {"size_mb": model.size_mb, "size_mib": model.size_mb * BYTES_PER_MB / BYTES_PER_MIB}
    return {**counts, **size}, model.runtime, model.precision


def profile_external(
    name: str,
    config: RuntimeConfig,
    on_model_start: Callable[[str, int], None] | None = None,
    on_iter: Callable[[], None] | None = None,
) -> dict[str, Any]:
    """The row of an external model (EXTERNAL_NOTE): latency, file size, CPU RSS growth; no counts (None)."""
    if on_model_start:
        on_model_start(name, config.warmup + config.iters)
    with CpuPeakRss() as rss:
        model = load_external(name)
        times_ms = model.time_embedding(config.batch_size, warmup=config.warmup, iters=config.iters, on_iter=on_iter)
    settings = model.settings()
    return {
        "model": name,
        "runtime": f"{name} (its library)",
        "device": settings["device"],
        "dtype": settings["dtype"],
        "batch": config.batch_size,
        "threads": settings["threads"],
        "channels_last": False,
        "params_m": None,
        "size_mb": model.size_mb,
        "size_mib": model.size_mb * BYTES_PER_MB / BYTES_PER_MIB,
        "gmacs": None,
        "gflops": None,
        **latency_summary(times_ms, config.batch_size),
        "mem_rss_peak_growth_mb": rss.growth_mb,
    }


def profile_meta(rows: Sequence[dict[str, Any]], config: RuntimeConfig) -> dict[str, Any]:
    """The settings and environment recorded beside profile rows (profile.json "meta").

    Device and threads come from the first zoo model's row (external models may run on
    their own library's device); EXTERNAL_NOTE is added when any row is external. ``machine``
    holds the load average and CPU clock before the first model's timing and after the last's;
    ``warnings`` the lines saying why latencies may be untrustworthy (``load_warning``,
    ``spread_warning``).
    """
    from facebench.provenance import environment

    first = next((row for row in rows if external_spec(row["model"]) is None), rows[0])
    machine_before, machine_after = (
        {"load_avg_1m": row[f"load_avg_1m_{when}"], "cpu_mhz": row[f"cpu_mhz_{when}"], "usable_cores": usable_cores()}
        for row, when in ((rows[0], "before"), (rows[-1], "after"))
    )
    meta = {
        "device": first["device"],
        "dtype": config.precision,
        "batch_size": config.batch_size,
        "threads": first["threads"],
        "channels_last": config.channels_last,
        "warmup": config.warmup,
        "iters": config.iters,
        "input": "random 3x112x112, normalised range [-1, 1]",
        "latency": "per-iteration wall time, ms; std is the sample std (ddof=1)",
        "units": "MB = 1e6 bytes; size_mb is the fp32 state_dict; gmacs by ptflops, gflops by FlopCounterMode",
        "environment": environment(),
        "machine": {"before_timing": machine_before, "after_timing": machine_after,
                    "note": "load_avg_1m: os.getloadavg; cpu_mhz: cpu0's cpufreq, else the mean of /proc/cpuinfo"},
        "warnings": [w for w in [load_warning(machine_before, machine_after, first["threads"])
                                 if first["device"].startswith("cpu") else "",
                                 *(row["timing_warning"] for row in rows)] if w],
    }
    if any(external_spec(row["model"]) is not None for row in rows):
        meta["external"] = EXTERNAL_NOTE
    return meta


def write_profile(
    rows: Sequence[dict[str, Any]], config: RuntimeConfig, out_dir: str | Path, title: str = "facebench profile"
) -> tuple[list[Path], dict[str, Any]]:
    """Write profile.csv, profile.md and profile.json (rows + ``profile_meta``) into ``out_dir``.

    Returns the paths written and the meta recorded.
    """
    meta = profile_meta(rows, config)
    return RunFolder(out_dir).write_profile(list(rows), title=title, meta=meta), meta
