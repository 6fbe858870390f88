"""Training images/s through the facebench engine vs a bare PyTorch loop, same model, head, optimiser, data.

Both loops train the zoo model with an ArcFace head (SGD, momentum 0.9, wd 5e-4) on the
same in-memory random batches (so decoding does not blur the comparison), in the same
process, interleaved in rounds so machine load hits both alike. The engine's figure is
its own metrics.csv samples/s over the timed steps (it includes everything the engine
adds: sampler, seeded samples, LR schedule, loss window, progress bar, CSV rows); the
bare loop is timed over the same number of steps. Target: engine / bare >= 0.95.

    python benchmarks/train_speed.py --models r18 mobilenet --batch-size 64 --threads 2 --steps 6 --rounds 2
    python benchmarks/train_speed.py --device cuda --amp --workers 8 --models ir50 r18 --batch-size 128 \
        --steps 40 --warmup 10   # GPU figures
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from facebench.device import device_name, resolve_device
from facebench.models import create_model
from facebench.models.heads import create_head
from facebench.train.config import EngineConfig
from facebench.train.distributed import DistInfo
from facebench.train.engine import Engine, Objective, RunSpec
from facebench.train.losses import margin_loss
from facebench.train.state import seed_everything

CLASSES = 259  # as ../shared/data/celeba


class RandomFaces(Dataset):
    """``count`` fixed random normalised 112x112 images with labels (held in memory)."""

    def __init__(self, count: int, seed: int = 0) -> None:
        generator = torch.Generator().manual_seed(seed)
        self.images = torch.randn(count, 3, 112, 112, generator=generator).clamp_(-1, 1)
        self.labels = torch.randint(0, CLASSES, (count,), generator=generator)

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        return self.images[index], int(self.labels[index])


def build(name: str) -> tuple[torch.nn.Module, torch.nn.Module]:
    seed_everything(0)
    return create_model(name), create_head("arcface", 512, CLASSES)


def bare_loop(name: str, data: RandomFaces, batch: int, warmup: int, steps: int, device: torch.device,
              amp: torch.dtype | None, workers: int) -> float:
    """Images/s of the textbook loop over ``steps`` steps after ``warmup`` steps."""
    model, head = build(name)
    model.to(device).train()
    head.to(device).train()
    params = [p for m in (model, head) for p in m.parameters() if p.requires_grad]
    optimizer = torch.optim.SGD(params, lr=0.01, momentum=0.9, weight_decay=5e-4)
    scaler = torch.amp.GradScaler(device.type, enabled=amp == torch.float16)
    loader = DataLoader(data, batch_size=batch, shuffle=True, drop_last=True, num_workers=workers,
                        pin_memory=device.type == "cuda")
    for k, (images, labels) in enumerate(loader):
        if k == warmup:
            if device.type == "cuda":
                torch.cuda.synchronize()
            start = time.perf_counter()
        images, labels = images.to(device, non_blocking=True), labels.to(device, non_blocking=True)
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.cross_entropy(head(model(images), labels), labels)
        optimizer.zero_grad(set_to_none=True)
        scaler.scale(loss).backward()
        scaler.step(optimizer)
        scaler.update()
    if device.type == "cuda":
        torch.cuda.synchronize()
    return steps * batch / (time.perf_counter() - start)


def engine_loop(name: str, data: RandomFaces, batch: int, warmup: int, steps: int, device: torch.device,
                amp: bool, workers: int) -> float:
    """Images/s the engine logs over the ``steps`` steps after ``warmup`` (its metrics.csv rows)."""
    model, head = build(name)
    config = EngineConfig(epochs=1, batch_size=batch, lr=0.01, warmup_epochs=0, workers=workers, log_every=warmup,
                          checkpoint_every=0, amp=amp, device=device.type)
    objective = Objective("main", {"model": model, "head": head}, margin_loss, lr=0.01)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunSpec(Path(tmp), name, 512, {"benchmark": True})
        engine = Engine(config, [objective], data, run, DistInfo(0, 1, 0, device), progress=True)
        engine.fit()
        with (Path(tmp) / "metrics.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    timed = rows[1:]  # the first row holds the warm-up steps
    seconds = sum(warmup * batch / float(r["samples_per_s"]) for r in timed)
    return len(timed) * warmup * batch / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", nargs="+", default=["r18", "mobilenet"])
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--steps", type=int, default=6, help="timed steps per loop and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (also the engine's log window)")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0, help="DataLoader workers of both loops (GPU: several)")
    parser.add_argument("--amp", action="store_true", help="bf16/fp16 autocast (CUDA)")
    args = parser.parse_args()
    if args.steps % args.warmup:
        parser.error("--steps must be a multiple of --warmup (the engine logs in windows of --warmup steps)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if args.amp else None
    data = RandomFaces((args.warmup + args.steps) * args.batch_size)
    print(f"device {device_name(device)}, threads {torch.get_num_threads()}, workers {args.workers}, "
          f"batch {args.batch_size}, amp {amp_dtype}, {args.steps} timed steps after {args.warmup}, {args.rounds} rounds")
    print("| model | bare loop img/s | engine img/s | engine / bare |")
    print("|---|---|---|---|")
    for name in args.models:
        bare, engine = [], []
        for k in range(args.rounds):
            for which in ("bare", "engine") if k % 2 == 0 else ("engine", "bare"):  # alternate who goes first
                if which == "bare":
                    bare.append(bare_loop(name, data, args.batch_size, args.warmup, args.steps, device, amp_dtype,
                                          args.workers))
                else:
                    engine.append(engine_loop(name, data, args.batch_size, args.warmup, args.steps, device, args.amp,
                                              args.workers))
        ratios = [e / b for e, b in zip(engine, bare, strict=True)]
        print(f"| {name} | {statistics.median(bare):.2f} ({', '.join(f'{b:.2f}' for b in bare)}) "
              f"| {statistics.median(engine):.2f} ({', '.join(f'{e:.2f}' for e in engine)}) "
              f"| {statistics.median(ratios):.3f} |", flush=True)


if __name__ == "__main__":
    main()
