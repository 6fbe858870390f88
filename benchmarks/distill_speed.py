"""Distillation images/s per method against the vanilla student (``none``), same engine, data and process.

Each method trains the student with its ArcFace head on the same in-memory random batches
(train_speed.py's RandomFaces, so decoding does not blur the comparison) from a teacher
with random weights saved as a facebench checkpoint with its head (the cost does not
depend on the weights). Figures are the engine's own metrics.csv samples/s over the timed
steps; methods run interleaved in rounds so machine load hits all alike. The ratio to
``none`` is the price of the teacher's forward pass (and, for adv, of the discriminator
step). Target on a GPU with AMP, r101 -> mobilenet: kd / none >= 0.5.

    python benchmarks/distill_speed.py --teacher r18 --student mobilenet --batch-size 32 --steps 4 --warmup 2
    python benchmarks/distill_speed.py --device cuda --amp --workers 8 --teacher r101 --student mobilenet \
        --batch-size 128 --steps 40 --warmup 10   # the issue's GPU figure
"""

from __future__ import annotations

import argparse
import csv
import statistics
import tempfile
from pathlib import Path

import torch
from train_speed import CLASSES, RandomFaces, build

from facebench.checkpoint import save_checkpoint
from facebench.device import device_name, resolve_device
from facebench.distill.config import METHODS, DistillConfig
from facebench.distill.methods import method_spec
from facebench.distill.teacher import resolve_teacher
from facebench.train.distributed import DistInfo
from facebench.train.engine import Engine, Objective, RunSpec
from facebench.train.losses import margin_loss


class Faces(RandomFaces):
    """RandomFaces with the class count a dataset reports (kd checks it against the teacher's head)."""

    num_classes = CLASSES


def save_teacher(name: str, folder: Path) -> Path:
    """A random-weight ``name`` with its ArcFace head, as a training checkpoint."""
    model, head = build(name)
    return save_checkpoint(folder / "checkpoint.pt", model, model_name=name, embedding_size=512,
                           config={"head": "arcface"}, extra={"training": {"modules": {"head": head.state_dict()}}})


def method_loop(method: str, teacher_path: Path, student: str, data: Faces, args: argparse.Namespace,
                device: torch.device) -> float:
    """Images/s the engine logs for ``method`` over the timed steps (after the first log window)."""
    config = DistillConfig(model=student, teacher=str(teacher_path), method=method, epochs=1,
                           batch_size=args.batch_size, lr=0.01, warmup_epochs=0, workers=args.workers,
                           log_every=args.warmup, checkpoint_every=0, amp=args.amp, device=device.type)
    config.alpha = config.resolved_alpha()
    model, head = build(student)
    objective = Objective("main", {"model": model, "head": head}, margin_loss, lr=0.01)
    teacher = resolve_teacher(str(teacher_path)) if method != "none" else None
    plan = method_spec(method).build(config, teacher, objective, data)
    with tempfile.TemporaryDirectory() as tmp:
        run = RunSpec(Path(tmp), student, 512, {"benchmark": True})
        engine = Engine(config, plan.objectives, data, run, DistInfo(0, 1, 0, device), frozen=plan.frozen)
        engine.fit()
        with (Path(tmp) / "metrics.csv").open(newline="") as handle:
            rows = list(csv.DictReader(handle))
    timed = rows[1:]  # the first row holds the warm-up steps
    seconds = sum(args.warmup * args.batch_size / float(r["samples_per_s"]) for r in timed)
    return len(timed) * args.warmup * args.batch_size / seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--teacher", default="r18")
    parser.add_argument("--student", default="mobilenet")
    parser.add_argument("--methods", nargs="+", default=list(METHODS), choices=METHODS)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--steps", type=int, default=4, help="timed steps per method and round")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps first (also the engine's log window)")
    parser.add_argument("--rounds", type=int, default=1)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--workers", type=int, default=0)
    parser.add_argument("--amp", action="store_true", help="bf16/fp16 autocast (CUDA)")
    args = parser.parse_args()
    if args.steps % args.warmup:
        parser.error("--steps must be a multiple of --warmup (the engine logs in windows of --warmup steps)")
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    methods = ["none", *[m for m in args.methods if m != "none"]]
    data = Faces((args.warmup + args.steps) * args.batch_size)
    print(f"device {device_name(device)}, threads {torch.get_num_threads()}, workers {args.workers}, batch "
          f"{args.batch_size}, amp {args.amp}, {args.teacher} -> {args.student}, {CLASSES} classes, "
          f"{args.steps} timed steps after {args.warmup}, {args.rounds} rounds")
    speeds: dict[str, list[float]] = {m: [] for m in methods}
    with tempfile.TemporaryDirectory() as tmp:
        teacher_path = save_teacher(args.teacher, Path(tmp))
        for k in range(args.rounds):
            for method in methods if k % 2 == 0 else methods[::-1]:  # alternate the order
                speeds[method].append(method_loop(method, teacher_path, args.student, data, args, device))
    base = statistics.median(speeds["none"])
    print("| method | img/s (median, rounds) | / none |")
    print("|---|---|---|")
    for method in methods:
        values = speeds[method]
        print(f"| {method} | {statistics.median(values):.2f} ({', '.join(f'{v:.2f}' for v in values)}) "
              f"| {statistics.median(values) / base:.3f} |")


if __name__ == "__main__":
    main()
