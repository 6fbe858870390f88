"""Is the training loader fast enough? Images/s it delivers vs images/s models consume, same run.

Measures on an identity-folder set (default ../shared/data/celeba, 250x250 JPEGs, centre
crop to 112x112, random flip, batch 64):
  loader      images/s through facebench.data.loaders (decode, crop, flip, normalise,
              collate) with 0, 1 and 2 worker processes, after the first batch;
  model       images/s one training step consumes (forward + backward + SGD step,
              ArcFace-size head replaced by a linear classifier) on synthetic input;
  end-to-end  the same training steps fed by the loader with default_workers() workers,
              which shows whether the loader slows training once both share the CPU.
Prints each figure and the ratio loader / model (> 1: the loader is not the bottleneck).

    /work/venv/bin/python benchmarks/loader_throughput.py [--models r18,mobilenet] [--batches 12]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from facebench.data.loaders import default_workers, make_loader, open_dataset
from facebench.device import cpu_name
from facebench.input_spec import random_input
from facebench.models import create_model

DEFAULT_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "celeba"


def loader_images_per_s(dataset, workers: int, batch_size: int, batches: int) -> float:
    """Images/s from the loader, timed from the first batch (worker start-up excluded)."""
    loader = make_loader(dataset, batch_size=batch_size, train=True, workers=workers, seed=0)
    iterator = iter(loader)
    next(iterator)
    start = time.perf_counter()
    for _ in range(batches):
        next(iterator)
    return batches * batch_size / (time.perf_counter() - start)


def training_step(model: torch.nn.Module, head: torch.nn.Module, optimizer: torch.optim.Optimizer,
                  images: torch.Tensor, labels: torch.Tensor) -> None:
    optimizer.zero_grad(set_to_none=True)
    loss = torch.nn.functional.cross_entropy(head(model(images)), labels)
    loss.backward()
    optimizer.step()


def model_images_per_s(name: str, num_classes: int, batch_size: int, steps: int, batches=None) -> float:
    """Images/s of training steps on synthetic input, or on ``batches`` (an iterator) when given."""
    torch.manual_seed(0)
    model = create_model(name).train()
    head = torch.nn.Linear(512, num_classes)
    optimizer = torch.optim.SGD([*model.parameters(), *head.parameters()], lr=0.01, momentum=0.9)
    synthetic = random_input(batch_size), torch.randint(0, num_classes, (batch_size,))
    fetch = (lambda: next(batches)) if batches is not None else (lambda: synthetic)
    training_step(model, head, optimizer, *fetch())  # warm-up
    start = time.perf_counter()
    for _ in range(steps):
        training_step(model, head, optimizer, *fetch())
    return steps * batch_size / (time.perf_counter() - start)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", type=Path, default=DEFAULT_DATA)
    parser.add_argument("--models", default="r18,mobilenet")
    parser.add_argument("--workers", default="0,1,2")
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--batches", type=int, default=12, help="timed loader batches per setting")
    parser.add_argument("--steps", type=int, default=3, help="timed training steps per model")
    parser.add_argument("--out", type=Path, help="also write the figures as JSON here")
    args = parser.parse_args()

    dataset = open_dataset(args.data, train=True)
    print(f"{args.data.resolve()}: {len(dataset)} images, {dataset.num_classes} identities; batch {args.batch_size}; "
          f"{cpu_name()}, torch threads {torch.get_num_threads()}")
    results: dict[str, float] = {}
    for workers in (int(w) for w in args.workers.split(",")):
        results[f"loader_w{workers}"] = loader_images_per_s(dataset, workers, args.batch_size, args.batches)
        print(f"loader, {workers} workers: {results[f'loader_w{workers}']:8.1f} images/s")
    fed_by = default_workers()
    for name in args.models.split(","):
        consumed = model_images_per_s(name, dataset.num_classes, args.batch_size, args.steps)
        loader = make_loader(dataset, batch_size=args.batch_size, train=True, workers=fed_by, seed=0)
        fed = model_images_per_s(name, dataset.num_classes, args.batch_size, args.steps, iter(loader))
        results[f"{name}_train"], results[f"{name}_train_fed_w{fed_by}"] = consumed, fed
        ratios = ", ".join(f"{key}/model {results[key] / consumed:.1f}x" for key in results if key.startswith("loader"))
        print(f"{name} training consumes {consumed:6.1f} images/s (synthetic input), "
              f"{fed:6.1f} images/s fed by the loader with {fed_by} workers ({fed / consumed:.2f}x); {ratios}")
    if args.out:
        args.out.write_text(json.dumps({"cpu": cpu_name(), "threads": torch.get_num_threads(),
                                        "batch_size": args.batch_size, "images_per_s": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()
