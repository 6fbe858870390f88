"""``torchrun --nproc_per_node=2 ... facebench train`` on CPU (gloo): both ranks end with identical weights."""

from __future__ import annotations

import csv
import json
import subprocess
import sys
from pathlib import Path

import torch
from train_helpers import TINY, make_faces

from facebench.checkpoint import load_checkpoint

HELPER = Path(__file__).resolve().parent / "train_helpers.py"


def test_two_process_gloo_run_keeps_ranks_identical(tmp_path: Path) -> None:
    data = make_faces(tmp_path / "faces", identities=4, per_identity=8)
    out, dumps = tmp_path / "run", tmp_path / "dumps"
    dumps.mkdir()
    command = [
        sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
        str(HELPER), "--dump-weights", str(dumps),
        "train", "--model", TINY, "--data", str(data), "--out", str(out), "--device", "cpu", "--embedding-size", "16",
        "--epochs", "2", "--batch-size", "4", "--workers", "0", "--log-every", "1", "--checkpoint-every", "3",
    ]  # fmt: skip
    process = subprocess.run(command, capture_output=True, text=True, timeout=180, check=False)
    assert process.returncode == 0, process.stdout + process.stderr
    ranks = [torch.load(dumps / f"rank{r}.pt") for r in (0, 1)]
    assert ranks[0].keys() == ranks[1].keys() and any(k.startswith("head.") for k in ranks[0])
    for name, tensor in ranks[0].items():
        assert torch.equal(tensor, ranks[1][name]), name
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    for name, tensor in checkpoint["state_dict"].items():
        assert torch.equal(tensor, ranks[0][f"model.{name}"]), name
    # 32 images over 2 processes at batch 4 -> 4 steps per epoch; rank 0 alone writes one row per step
    config = json.loads((out / "config.json").read_text())
    assert (config["world_size"], config["steps_per_epoch"], config["total_steps"]) == (2, 4, 8)
    with (out / "metrics.csv").open(newline="") as handle:
        steps = [row["step"] for row in csv.DictReader(handle)]
    assert steps == [str(s) for s in range(1, 9)]
    assert checkpoint["extra"]["training"]["world_size"] == 2 and len(checkpoint["extra"]["training"]["rng"]) == 2
