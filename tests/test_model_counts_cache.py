"""``facebench models`` counts: computed once per model definition, then read from the on-disk cache."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from facebench.profiling import model_counts, static


@pytest.fixture
def counted(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Model classes passed to static_metrics (the expensive count) during the test."""
    calls: list[str] = []
    real = static.static_metrics

    def spy(model):
        calls.append(type(model).__name__)
        return real(model)

    monkeypatch.setattr(static, "static_metrics", spy)
    return calls


def test_second_call_reads_the_cache(tmp_path: Path, counted: list[str]) -> None:
    cache = tmp_path / "model_counts.json"
    (first,), names = model_counts.zoo_rows("mbf", cache)
    (second,), _ = model_counts.zoo_rows("mbf", cache)
    assert len(counted) == 1
    assert second == first and "mbf" in names and "r101" in names
    assert first["feature_map"] == "512x7x7" and 0.4 < first["gmacs"] < 0.5  # insightface's mbf: 0.45 GMACs
    assert json.loads(cache.read_text())["key"] == model_counts.counts_key()


def test_changed_key_recomputes(tmp_path: Path, counted: list[str], monkeypatch: pytest.MonkeyPatch) -> None:
    cache = tmp_path / "model_counts.json"
    model_counts.zoo_rows("mbf", cache)
    monkeypatch.setattr(model_counts, "counts_key", lambda: "another model definition")
    model_counts.zoo_rows("mbf", cache)
    assert len(counted) == 2


def test_key_follows_model_source_and_versions(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    before = model_counts.counts_key()
    assert "torch " in before and "ptflops " in before
    edited = tmp_path / "models"
    edited.mkdir()
    for source in model_counts.SOURCES[0].glob("*.py"):
        (edited / source.name).write_text(source.read_text())
    monkeypatch.setattr(model_counts, "SOURCES", (edited, model_counts.SOURCES[1]))
    assert model_counts.counts_key() == before
    (edited / "resnet.py").write_text((edited / "resnet.py").read_text() + "\n# edited\n")
    assert model_counts.counts_key() != before


def test_corrupt_cache_is_recomputed(tmp_path: Path, counted: list[str]) -> None:
    cache = tmp_path / "model_counts.json"
    cache.write_text("{not json")
    model_counts.zoo_rows("mbf", cache)
    assert len(counted) == 1 and "mbf" in json.loads(cache.read_text())["models"]


def test_cached_listing_does_not_import_torch(tmp_path: Path) -> None:
    cache = tmp_path / "model_counts.json"
    model_counts.zoo_rows("mbf", cache)
    code = (f"import sys; from facebench.profiling.model_counts import zoo_rows; rows, _ = zoo_rows('mbf', "
            f"__import__('pathlib').Path({str(cache)!r})); print(len(rows), 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.split()
    assert out == ["1", "False"]
