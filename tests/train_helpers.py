"""A tiny face backbone and tiny datasets for the training tests (fast on 2 CPU cores).

Run as a script, it registers the tiny model and runs ``facebench`` with the given
arguments, so subprocess tests (SIGKILL + resume, torchrun DDP) use the real command.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from facebench.models.common import FEATURE_MAP_SIZE, FaceBackbone
from facebench.models.registry import _REGISTRY, ModelSpec

TINY = "tiny-test"


class TinyNet(FaceBackbone):
    """112x112 -> (N, 8, 7, 7) with two strided convs -> E head: the zoo interface at toy cost."""

    def __init__(self, *, embedding_size: int = 16) -> None:
        super().__init__()
        self.feature_channels = 8
        self.body = nn.Sequential(
            nn.Conv2d(3, 8, 4, stride=4, bias=False), nn.BatchNorm2d(8), nn.ReLU(),  # 112 -> 28
            nn.Conv2d(8, 8, 4, stride=4, bias=False), nn.BatchNorm2d(8), nn.ReLU(),  # 28 -> 7
        )
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(8 * FEATURE_MAP_SIZE**2, embedding_size),
                                  nn.BatchNorm1d(embedding_size))


def tiny_spec() -> ModelSpec:
    return ModelSpec(TINY, "test", "two-conv toy backbone for tests", TinyNet)


def register_tiny() -> None:
    """Put the tiny model in the zoo registry (scripts; tests use monkeypatch.setitem instead)."""
    _REGISTRY.setdefault(TINY, tiny_spec())


def make_faces(root: Path, identities: int = 4, per_identity: int = 8, size: int = 112, seed: int = 0) -> Path:
    """root/id<k>/<n>.png: each identity a distinct colour pattern plus noise (linearly separable)."""
    import cv2

    rng = np.random.default_rng(seed)
    for k in range(identities):
        base = rng.integers(0, 256, (4, 4, 3)).astype(np.float32)
        pattern = cv2.resize(base, (size, size), interpolation=cv2.INTER_NEAREST)
        folder = root / f"id{k}"
        folder.mkdir(parents=True, exist_ok=True)
        for n in range(per_identity):
            image = np.clip(pattern + rng.normal(0, 20, pattern.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(folder / f"{n:03d}.png"), image)
    return root


def write_pairs_csv(root: Path, identities: int = 4, per_identity: int = 8) -> Path:
    """A 2-fold pairs CSV over make_faces' tree: per fold, matched and mismatched pairs."""
    lines = ["path_a,path_b,issame,fold"]
    for fold in range(2):
        for k in range(identities):
            a, b = 2 * fold, 2 * fold + 1
            lines.append(f"id{k}/{a:03d}.png,id{k}/{b:03d}.png,1,{fold}")
            lines.append(f"id{k}/{a:03d}.png,id{(k + 1) % identities}/{b:03d}.png,0,{fold}")
    path = root / "pairs.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


def _script_callbacks(argv: list[str]) -> tuple[list, list[str]]:
    """Leading ``--kill-at-step N`` / ``--term-at-step N`` / ``--term-group-at-step N`` / ``--dump-weights DIR``
    options -> engine callbacks, rest of argv (kill: SIGKILL, term: SIGTERM, each sent to itself, or to its process
    group, after that step)."""
    import os
    import signal

    callbacks = []
    while argv and argv[0] in ("--kill-at-step", "--term-at-step", "--term-group-at-step", "--dump-weights"):
        option, value, argv = argv[0], argv[1], argv[2:]
        if option == "--term-group-at-step":  # SIGTERM to the whole process group (data loader workers too)
            def term_group(engine, step, at=int(value)):
                if step == at:
                    os.killpg(os.getpgid(0), signal.SIGTERM)
            callbacks.append(term_group)
        elif option in ("--kill-at-step", "--term-at-step"):
            def kill(engine, step, at=int(value), sig=signal.SIGKILL if option == "--kill-at-step" else signal.SIGTERM):
                if step == at:
                    os.kill(os.getpid(), sig)
            callbacks.append(kill)
        else:
            def dump(engine, step, folder=Path(value)):
                if step == engine.total_steps:
                    state = {f"{name}.{key}": tensor for name, module in engine.modules.items()
                             for key, tensor in module.state_dict().items()}
                    torch.save(state, folder / f"rank{engine.dist.rank}.pt")
            callbacks.append(dump)
    return callbacks, argv


if __name__ == "__main__":
    import functools

    import facebench.train.run

    register_tiny()
    torch.set_num_threads(1)
    hooks, args = _script_callbacks(sys.argv[1:])
    facebench.train.run.train = functools.partial(facebench.train.run.train, callbacks=hooks)
    from facebench.cli import app

    app(args)
