"""How long `facebench bench --preset paper` takes on this GPU: measured step rates x the preset's plan.

Measures, on random batches already on the device (so decoding is left out: the number is
what the GPU allows, a lower bound on wall time):
- training images/s of each model with an ArcFace head over MS1MV2's 85,742 classes
  (SGD, AMP bf16, channels_last), the preset's batch size;
- the teacher's inference images/s (what every kd/adv/emb step adds: one teacher forward).
Then: teacher = images x epochs / its training rate; a student's ``none`` run = images x
epochs / its rate; ``kd``/``adv``/``emb`` = images x epochs x (1/student rate + 1/teacher
inference rate). Verification and profiling take minutes and are left out.
``paper_plan`` turns rates into hours per bench step; ``gpu_acceptance.py`` feeds it the
distillation engine's own measured rates instead of this sum.

    python benchmarks/paper_time.py                   # GPU (the preset's device)
    python benchmarks/paper_time.py --device cpu --steps 2 --warmup 1 --batch-size 8 --classes 1000   # smoke test
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Mapping

import torch
import torch.nn.functional as F

from facebench.bench.presets import PAPER
from facebench.device import device_name, resolve_device
from facebench.models import create_model
from facebench.models.heads import create_head

MS1MV2_IMAGES = 5_822_653  # insightface faces_emore (MS1M-ArcFace): train.rec images
MS1MV2_CLASSES = 85_742  # its identities


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def train_rate(name: str, batch: int, classes: int, warmup: int, steps: int, device: torch.device,
               amp: torch.dtype | None) -> float:
    """Training images/s: forward, ArcFace loss, backward, SGD step."""
    model = create_model(name).to(device, memory_format=torch.channels_last).train()
    head = create_head("arcface", 512, classes).to(device).train()
    optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9, weight_decay=5e-4)
    images = torch.randn(batch, 3, 112, 112, device=device).contiguous(memory_format=torch.channels_last)
    labels = torch.randint(0, classes, (batch,), device=device)
    for k in range(warmup + steps):
        if k == warmup:
            _sync(device)
            start = time.perf_counter()
        with torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
            loss = F.cross_entropy(head(model(images), labels), labels)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def inference_rate(name: str, batch: int, warmup: int, steps: int, device: torch.device,
                   amp: torch.dtype | None) -> float:
    """Inference images/s of a frozen model (the teacher inside a distillation step)."""
    model = create_model(name).to(device, memory_format=torch.channels_last).eval()
    images = torch.randn(batch, 3, 112, 112, device=device).contiguous(memory_format=torch.channels_last)
    with torch.inference_mode(), torch.autocast(device.type, dtype=amp or torch.float32, enabled=amp is not None):
        for k in range(warmup + steps):
            if k == warmup:
                _sync(device)
                start = time.perf_counter()
            model(images)
    _sync(device)
    return steps * batch / (time.perf_counter() - start)


def paper_plan(teacher_rate: float | None, student_rates: Mapping[tuple[str, str], float],
               images: int = MS1MV2_IMAGES) -> dict[str, tuple[float | None, float | None]]:
    """(training images/s, GPU hours) of each training step of ``bench --preset paper``, keyed by the bench's
    step titles, from the teacher's rate and each (student, method)'s; (None, None) where a rate is missing."""

    def step(epochs: int, rate: float | None) -> tuple[float | None, float | None]:
        return rate, (images * epochs / rate / 3600 if rate else None)

    plan = {f"train teacher {PAPER.teacher}": step(PAPER.teacher_epochs, teacher_rate)}
    for method in PAPER.methods:
        for student in PAPER.students:
            plan[f"distill {student} ({method})"] = step(PAPER.student_epochs, student_rates.get((student, method)))
    return plan


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--device", default=PAPER.device)
    parser.add_argument("--batch-size", type=int, default=PAPER.batch_size)
    parser.add_argument("--classes", type=int, default=MS1MV2_CLASSES)
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--steps", type=int, default=30)
    args = parser.parse_args()
    device = resolve_device(args.device)
    amp = torch.bfloat16 if device.type == "cuda" else None
    if device.type == "cuda":
        torch.backends.cudnn.benchmark = True
    print(f"{device_name(device)}, torch {torch.__version__}, batch {args.batch_size}, amp {amp}, "
          f"{args.classes} classes, {args.steps} timed steps after {args.warmup}")
    rates = {m: train_rate(m, args.batch_size, args.classes, args.warmup, args.steps, device, amp)
             for m in dict.fromkeys([PAPER.teacher, *PAPER.students])}  # fmt: skip
    teacher_infer = inference_rate(PAPER.teacher, args.batch_size, args.warmup, args.steps, device, amp)
    print("| model | training img/s | inference img/s |\n|---|---|---|")
    for name, rate in rates.items():
        print(f"| {name} | {rate:.0f} | {f'{teacher_infer:.0f}' if name == PAPER.teacher else ''} |")
    student_rates = {(s, m): 1 / (1 / rates[s] + (0 if m == "none" else 1 / teacher_infer))
                     for m in PAPER.methods for s in PAPER.students}  # fmt: skip
    hours = {title: h for title, (_, h) in paper_plan(rates[PAPER.teacher], student_rates).items()}
    print(f"\npreset paper, {MS1MV2_IMAGES:,} images, {PAPER.teacher_epochs}/{PAPER.student_epochs} epochs:\n")
    print("| step | GPU hours |\n|---|---|")
    for step, h in hours.items():
        print(f"| {step} | {h:.1f} |")
    print(f"| total | {sum(hours.values()):.1f} ({sum(hours.values()) / 24:.1f} days) |")


if __name__ == "__main__":
    main()
