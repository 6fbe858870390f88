"""A CPU run SIGKILLed mid-epoch and resumed ends bit-identical to an uninterrupted run."""

from __future__ import annotations

import csv
import signal
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from train_helpers import TINY, make_faces, tiny_spec

from facebench.checkpoint import load_checkpoint
from facebench.models import registry
from facebench.train.config import TrainConfig
from facebench.train.run import resume_config, train

HELPER = Path(__file__).resolve().parent / "train_helpers.py"
# 32 images, batch 8 -> 4 steps per epoch, 3 epochs; checkpoints at steps 3, 6, 9, 12
ARGS = ["--model", TINY, "--embedding-size", "16", "--epochs", "3", "--batch-size", "8", "--workers", "0",
        "--threads", "1", "--log-every", "1", "--checkpoint-every", "3", "--warmup-epochs", "0.5", "--seed", "7"]


def tensors(checkpoint: dict) -> dict[str, torch.Tensor]:
    """Every tensor of a checkpoint's weights and training state, by a flat name."""
    flat: dict[str, torch.Tensor] = {}

    def walk(prefix: str, value: object) -> None:
        if isinstance(value, torch.Tensor):
            flat[prefix] = value
        elif isinstance(value, dict):
            for key, item in value.items():
                walk(f"{prefix}/{key}", item)
        elif isinstance(value, (list, tuple)):
            for key, item in enumerate(value):
                walk(f"{prefix}/{key}", item)

    walk("weights", checkpoint["state_dict"])
    training = checkpoint["extra"]["training"]
    for part in ("modules", "optimizers", "rng"):
        walk(part, training[part])
    return flat


def loss_column(path: Path) -> list[tuple[str, str]]:
    with path.open(newline="") as handle:
        return [(row["step"], row["loss"]) for row in csv.DictReader(handle)]


def test_sigkill_mid_epoch_then_resume_is_bit_identical(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    threads = torch.get_num_threads()
    data = make_faces(tmp_path / "faces")
    try:
        whole = tmp_path / "whole"
        train(TrainConfig(model=TINY, data=str(data), out=str(whole), embedding_size=16, epochs=3, batch_size=8,
                          workers=0, threads=1, log_every=1, checkpoint_every=3, warmup_epochs=0.5, seed=7),
              progress=False)

        killed = tmp_path / "killed"
        # killed after step 5 (1st batch of epoch 1); its last checkpoint, step 3, is mid-epoch 0 as well,
        # so the resumed run starts at the 4th batch of epoch 0 and recomputes steps 4 and 5
        process = subprocess.run([sys.executable, str(HELPER), "--kill-at-step", "5", "train", *ARGS,
                                  "--data", str(data), "--out", str(killed)], capture_output=True, text=True, timeout=120, check=False)
        assert process.returncode == -signal.SIGKILL, process.stderr
        assert load_checkpoint(killed / "checkpoint.pt")["extra"]["training"]["step"] == 3
        assert [s for s, _ in loss_column(killed / "metrics.csv")] == ["1", "2", "3", "4", "5"]

        train(resume_config(killed, {}), resume=True, progress=False)
    finally:
        torch.set_num_threads(threads)

    expected, got = load_checkpoint(whole / "checkpoint.pt"), load_checkpoint(killed / "checkpoint.pt")
    assert got["extra"]["training"]["step"] == expected["extra"]["training"]["step"] == 12
    want, have = tensors(expected), tensors(got)
    assert want.keys() == have.keys() and len(want) > 20
    for name, tensor in want.items():
        assert torch.equal(tensor, have[name]), name
    assert loss_column(killed / "metrics.csv") == loss_column(whole / "metrics.csv")  # every step once, same values
