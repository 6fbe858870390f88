"""What does ``facebench.allocator.tune_allocator`` buy? Page faults and throughput of a bare forward pass.

Each variant runs in a fresh subprocess (mallopt cannot be undone in-process), in turn, for
--rounds rounds so machine drift hits all alike; medians are printed:
  default     glibc malloc as the process starts (the baseline every ratio is taken against)
  facebench   after ``tune_allocator()`` (what verify, train, distill, profile, export, bench do)
  jemalloc / tcmalloc   LD_PRELOADed, where ``ldconfig -p`` lists the library
Per variant: minor page faults per image (getrusage ru_minflt over the timed passes), images/s,
and user and system CPU seconds of the timed passes. Target (issue 16): system time under 10%
of user time with the facebench variant.

Usage: .venv/bin/python benchmarks/allocator.py [--models mbf,r18] [--batch 64] [--iters 5] [--rounds 2] [--threads N]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import time
from statistics import median

from facebench.device import acceleration_flags, cpu_name, flags_text



def preloadable() -> dict[str, str]:
    """{'jemalloc': path, 'tcmalloc': path} for the allocators ``ldconfig -p`` lists."""
    try:
        listing = subprocess.run(["ldconfig", "-p"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        return {}
    found = {}
    for line in listing.splitlines():
        for name in ("jemalloc", "tcmalloc"):
            if f"lib{name}.so" in line and "=>" in line and name not in found:
                found[name] = line.split("=>")[1].strip()
    return found


def child(variant: str, model_name: str, batch: int, iters: int, threads: int | None) -> None:
    """Time ``iters`` forward passes after one warm-up in this process; print one JSON line."""
    from facebench.allocator import allocator_state, tune_allocator

    state = tune_allocator() if variant == "facebench" else allocator_state()
    import torch

    from facebench.input_spec import random_input
    from facebench.models import create_model

    if threads is not None:
        torch.set_num_threads(threads)
    model = create_model(model_name).eval()
    x = random_input(batch)
    with torch.inference_mode():
        model(x)
        before, start = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for _ in range(iters):
            model(x)
        wall, after = time.perf_counter() - start, resource.getrusage(resource.RUSAGE_SELF)
    images = batch * iters
    print(json.dumps({"faults_per_image": (after.ru_minflt - before.ru_minflt) / images, "ips": images / wall,
                      "user_s": after.ru_utime - before.ru_utime, "sys_s": after.ru_stime - before.ru_stime,
                      "allocator": state, "threads": torch.get_num_threads()}))


def run_variant(variant: str, preload: str | None, args: argparse.Namespace, model: str) -> dict:
    """One fresh process of ``variant``; its JSON line."""
    env = dict(os.environ)
    if preload:
        env["LD_PRELOAD"] = preload
    command = [sys.executable, __file__, "--child", variant, "--models", model, "--batch", str(args.batch),
               "--iters", str(args.iters)] + (["--threads", str(args.threads)] if args.threads else [])
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=True)
    return json.loads(done.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mbf,r18")
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--iters", type=int, default=5)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        return child(args.child, args.models, args.batch, args.iters, args.threads)

    variants: dict[str, str | None] = {"default": None, "facebench": None, **preloadable()}
    load_before = os.getloadavg()
    print(f"CPU: {cpu_name()}; {os.cpu_count()} logical CPUs; flags: {flags_text(acceleration_flags())}")
    print(f"batch {args.batch}, {args.iters} timed passes after 1 warm-up, medians of {args.rounds} rounds; "
          f"variants: {', '.join(variants)}")
    for model in args.models.split(","):
        results: dict[str, list[dict]] = {v: [] for v in variants}
        for _ in range(args.rounds):
            for variant, preload in variants.items():
                results[variant].append(run_variant(variant, preload, args, model))
        base_ips = median(r["ips"] for r in results["default"])
        print(f"\n{model} ({results['default'][0]['threads']} threads)")
        print(f"{'variant':<10} {'faults/img':>11} {'img/s':>7} {'x default':>9} {'user s':>7} {'sys s':>6} "
              f"{'sys/user':>8}  allocator")
        for variant, runs in results.items():
            ips, user, sys_s = (median(r[k] for r in runs) for k in ("ips", "user_s", "sys_s"))
            faults = median(r["faults_per_image"] for r in runs)
            state = runs[0]["allocator"]
            settings = ", ".join(f"{k} {v}" for k, v in state["mallopt"].items())
            print(f"{variant:<10} {faults:>11,.0f} {ips:>7.1f} {ips / base_ips:>8.2f}x {user:>7.2f} {sys_s:>6.2f} "
                  f"{sys_s / user:>8.1%}  {state['allocator']}{' (' + settings + ')' if settings else ''}")
    print(f"\nload average (1 min) before {load_before[0]:.2f}, after {os.getloadavg()[0]:.2f} "
          f"on {os.cpu_count()} CPUs (other jobs inflate sys time and spread)")


if __name__ == "__main__":
    main()
