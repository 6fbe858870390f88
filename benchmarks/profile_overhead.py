"""Does `facebench profile` add anything to what it measures? And how close to the machine's peak is it?

1. r18, batch 1: latency through facebench's measurement path (``measure_runtime``, the
   code `facebench profile` runs) against a bare ``perf_counter`` loop over the same module,
   interleaved in rounds so machine drift hits both alike. Target: within 5%.
2. r18, batch 64: achieved GFLOP/s (FlopCounterMode FLOPs / measured latency) against the
   same machine's fp32 GEMM GFLOP/s (a square torch.mm), both with the same threads.

Usage: python benchmarks/profile_overhead.py [--threads 1] [--iters 50] [--rounds 5] [--device cpu]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
import torch

from facebench.device import device_name, resolve_device
from facebench.input_spec import random_input
from facebench.models import create_model
from facebench.profiling.runtime import RuntimeConfig, measure_runtime, pinned_threads
from facebench.profiling.static import count_flops


def bare_loop_ms(model: torch.nn.Module, x: torch.Tensor, warmup: int, iters: int) -> float:
    """Mean ms of a plain timing loop: the baseline a user would write by hand."""
    sync = torch.cuda.synchronize if x.device.type == "cuda" else (lambda: None)
    with torch.inference_mode():
        for _ in range(warmup):
            model(x)
        sync()
        start = time.perf_counter()
        for _ in range(iters):
            model(x)
        sync()
    return (time.perf_counter() - start) * 1e3 / iters


def gemm_gflops(device: torch.device, n: int = 2048, iters: int = 10) -> float:
    """fp32 GFLOP/s of an n x n x n matrix product (2 n^3 FLOPs), best of ``iters``."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    torch.mm(a, b)
    best = float("inf")
    for _ in range(iters):
        sync()
        start = time.perf_counter()
        torch.mm(a, b)
        sync()
        best = min(best, time.perf_counter() - start)
    return 2 * n**3 / best / 1e9


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--iters", type=int, default=50)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--device", default="cpu")
    args = parser.parse_args()
    device = resolve_device(args.device)
    print(f"{device_name(device)}, torch {torch.__version__}, {args.threads} thread(s), fp32")

    model = create_model("r18").eval().to(device)
    x = random_input(1).to(device)
    config = RuntimeConfig(device, batch_size=1, warmup=10, iters=args.iters, threads=args.threads)
    profiled, bare = [], []
    with pinned_threads(args.threads):
        for _ in range(args.rounds):
            profiled.append(measure_runtime(lambda: model, config)["latency_ms_mean"])
            bare.append(bare_loop_ms(model, x, 10, args.iters))
    ratio = np.median(profiled) / np.median(bare)
    print(f"r18 batch 1: facebench {np.median(profiled):.2f} ms, bare loop {np.median(bare):.2f} ms "
          f"(medians of {args.rounds} rounds x {args.iters} iters); ratio {ratio:.3f} (target within 0.95-1.05)")

    batch = 64
    config64 = RuntimeConfig(device, batch_size=batch, warmup=2, iters=max(3, args.iters // 10), threads=args.threads)
    latency_ms = measure_runtime(lambda: model, config64)["latency_ms_mean"]
    achieved = count_flops(model) * batch / (latency_ms / 1e3) / 1e9
    with pinned_threads(args.threads):
        peak = gemm_gflops(device)
    print(f"r18 batch {batch}: {latency_ms:.1f} ms/batch, {achieved:.1f} GFLOP/s achieved; "
          f"fp32 GEMM (2048^3) {peak:.1f} GFLOP/s; ratio {achieved / peak:.2f}")


if __name__ == "__main__":
    main()
