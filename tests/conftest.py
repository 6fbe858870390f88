"""Shared fixtures: the CLI runner and the optional real-data folder."""

from __future__ import annotations

from pathlib import Path

import pytest
from typer.testing import CliRunner

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


@pytest.fixture
def runner() -> CliRunner:
    return CliRunner()


@pytest.fixture
def shared_data() -> Path:
    """../shared/data from the repository root; tests using it skip when it is absent."""
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not present")
    return SHARED_DATA.resolve()


@pytest.fixture
def weights(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """'Pretrained' mfn128 weights (seeded random, saved as a plain state dict), with the tiny student registered."""
    import torch
    from train_helpers import TINY, tiny_spec

    from facebench.models.registry import _REGISTRY
    from facebench.modelspec import seeded_zoo_model

    monkeypatch.setitem(_REGISTRY, TINY, tiny_spec())
    path = tmp_path / "mfn128.pt"
    torch.save(seeded_zoo_model("mfn128").state_dict(), path)
    return path
