"""The layers of docs/development.md, enforced: import-linter reads every import, inside functions too."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

import architecture  # noqa: E402  (benchmarks/architecture.py: the same reading, as figures)


def test_layers_contract_holds() -> None:
    """An upward import anywhere in facebench (module level or inside a function) breaks this contract."""
    from importlinter.cli import lint_imports

    cwd = os.getcwd()
    os.chdir(ROOT)  # the contract names the package; the config file lies at the repository root
    try:
        assert lint_imports(config_filename=str(ROOT / ".importlinter"), no_cache=True, no_logo=True) == 0
    finally:
        os.chdir(cwd)


def test_layer_reading_flags_upward_and_sibling_imports() -> None:
    stack = architecture.layers(ROOT / ".importlinter")
    assert [name for name, _ in stack[0]] == ["cli"] and [name for name, _ in stack[-1]] == ["errors"]
    edges = [
        ("facebench.data.images", "facebench.models.registry", 3, "from facebench.models.registry import x"),
        ("facebench.eval.verify", "facebench.profiling.runtime", 4, "from facebench.profiling import y"),
        ("facebench.checkpoint", "facebench.tables", 5, "from facebench.tables import z"),  # ":" siblings may
        ("facebench.cli.app", "facebench.errors", 6, "from facebench.errors import FacebenchError"),
    ]
    found = architecture.upward_imports(edges, stack)
    assert [line.split(" ->")[0] for line in found] == ["facebench.data.images:3", "facebench.eval.verify:4"]


def test_no_package_cycles_and_no_upward_imports_in_facebench() -> None:
    grimp = pytest.importorskip("grimp")
    edges = architecture.import_edges(grimp.build_graph("facebench", cache_dir=None))
    assert architecture.package_cycles(edges) == []
    assert architecture.upward_imports(edges, architecture.layers(ROOT / ".importlinter")) == []
