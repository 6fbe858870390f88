"""``facebench models`` rows, cached on disk: counting the zoo takes about a minute, a cached listing a second.

The cache (``cache_dir() / COUNTS_CACHE``) is keyed by ``counts_key``: the text of every model
definition and of the counting code, and the installed torch and ptflops versions, all read
without importing torch, so a listing served from the cache never imports it.
"""

from __future__ import annotations

import fnmatch
import hashlib
import importlib.metadata
import json
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from facebench.fileio import cache_dir, write_json_atomic

COUNTS_CACHE = "model_counts.json"
_PACKAGE = Path(__file__).resolve().parents[1]
SOURCES = (_PACKAGE / "models", _PACKAGE / "profiling" / "static.py")  # model definitions, counting code


def counts_key() -> str:
    """SHA-256 (16 hex digits) of every model definition (facebench/models/*.py) and of static.py, with the
    torch and ptflops versions: any change makes ``zoo_rows`` recompute."""
    digest = hashlib.sha256()
    files = sorted(SOURCES[0].glob("*.py")) + [SOURCES[1]]
    for source in files:
        digest.update(source.name.encode() + b"\0" + source.read_bytes() + b"\0")
    versions = "; ".join(f"{name} {importlib.metadata.version(name)}" for name in ("torch", "ptflops"))
    return f"{digest.hexdigest()[:16]}; {versions}"


def zoo_rows(
    pattern: str | None = None,
    cache: Path | None = None,
    on_compute: Callable[[list[str]], Iterable[str]] = iter,
) -> tuple[list[dict[str, Any]], list[str]]:
    """(a row per zoo model matching the glob ``pattern``: model, family, feature_map, ``static_metrics``,
    description; every zoo name). Rows come from ``cache`` (default ``cache_dir() / COUNTS_CACHE``) when it
    was written under the current ``counts_key``; the others are computed (``on_compute`` wraps their names,
    e.g. in a progress bar) and stored. An unreadable cache file is recomputed and replaced."""
    path = cache if cache is not None else cache_dir() / COUNTS_CACHE
    key = counts_key()
    stored = _read(path)
    valid = stored.get("key") == key and isinstance(stored.get("names"), list)
    rows: dict[str, dict[str, Any]] = stored.get("models", {}) if valid else {}
    names: list[str] = stored["names"] if valid else _registry_names()
    chosen = [n for n in names if fnmatch.fnmatch(n, pattern)] if pattern else names
    missing = [n for n in chosen if n not in rows]
    if missing:
        for name in on_compute(missing):
            rows[name] = _count(name)
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, {"key": key, "names": names, "models": rows})
    return [rows[n] for n in chosen], names


def _registry_names() -> list[str]:
    from facebench.models import list_models

    return list_models()


def _count(name: str) -> dict[str, Any]:
    """The listing row of zoo model ``name``, counted now."""
    from facebench.models import create_model, model_spec
    from facebench.profiling.static import static_metrics

    spec, model = model_spec(name), create_model(name)
    return {"model": name, "family": spec.family, "feature_map": f"{model.feature_channels}x7x7",
            **static_metrics(model).as_dict(), "description": spec.description}


def _read(path: Path) -> dict[str, Any]:
    """The cache file's content, or {} when it is missing or not a JSON object."""
    try:
        stored = json.loads(path.read_text())
    except (OSError, ValueError):
        return {}
    return stored if isinstance(stored, dict) else {}
