"""All-pairs verification (``facebench.eval.operating_points``) and 1:N identification: exactness and cost.

  exactness   a few thousand embeddings on a 2^-11 grid (every dot product exact in float32, whatever the
              BLAS summation order) scored in blocks, with and without a small kept cap, against the full
              score matrix: counts, genuine scores, kept impostors, histogram, thresholds and FNMR must be
              equal (==); plain float32 embeddings are compared too, for information (BLAS kernels for small
              blocks sum in another order, which moves the last bit of some cosines)
  lfw         7,701 embeddings with LFW's identity sizes (from ../shared/data/lfw's folders when present,
              else synthetic ones): seconds after embedding for scoring, operating points without and with the
              bootstrap, and identification
  large       100,000 random 512-d embeddings (~5 x 10^9 pairs) in a fresh child process: wall time, peak
              resident memory (ru_maxrss) and the computed bound of the working memory

    /work/venv/bin/python benchmarks/all_pairs.py [--threads 2] [--replicates 1000] [--large 100000]
        [--large-replicates 1000] [--quick] [--out reports/benchmarks/all_pairs]
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import platform
import resource
import time
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
from threadpoolctl import threadpool_limits

from facebench.eval.identification import evaluate_identification
from facebench.eval.operating_points import (
    DEFAULT_BINS,
    DEFAULT_BLOCK_BYTES,
    DEFAULT_MAX_KEPT,
    FMR_TARGETS,
    kept_size,
    memory_bound_bytes,
    operating_points,
    score_bins,
    score_pairs,
)
from facebench.fileio import write_json_atomic, write_text_atomic

ROOT = Path(__file__).resolve().parents[1]
LFW = ROOT.parent / "shared" / "data" / "lfw"
LFW_IMAGES = 7701
MIB = 2**20


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--threads", type=int, default=2, help="BLAS threads (the scoring's matrix products)")
    parser.add_argument("--exact", type=int, default=3000, help="embeddings in the exactness check")
    parser.add_argument("--dim", type=int, default=512)
    parser.add_argument("--replicates", type=int, default=1000, help="bootstrap replicates for the LFW-size set")
    parser.add_argument("--large", type=int, default=100_000, help="embeddings in the large run (0: skip)")
    parser.add_argument("--large-replicates", type=int, default=1000, help="bootstrap replicates in the large run")
    parser.add_argument("--quick", action="store_true", help="600 exact, 5,000 large, 100 replicates each")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "all_pairs")
    args = parser.parse_args()
    if args.quick:
        args.exact, args.replicates, args.large, args.large_replicates = 600, 100, min(args.large, 5000), 100
    return args


def machine(threads: int) -> dict[str, Any]:
    """CPU model, flags and versions; facebench.device is imported here, not at the top, because it imports
    torch, which the large run's child process must not carry in its peak memory."""
    from facebench.device import acceleration_flags, cpu_name

    return {"cpu": cpu_name(), "cpu_flags": acceleration_flags(), "threads": threads,
            "cores": os.cpu_count(), "numpy": np.__version__, "python": platform.python_version(),
            "load_average_1min": round(os.getloadavg()[0], 2)}  # fmt: skip


def lfw_sizes(n_images: int, rng: np.random.Generator) -> tuple[np.ndarray, str]:
    """Images per identity: LFW's own folders when ../shared/data/lfw holds them, else geometric sizes."""
    if LFW.is_dir():
        sizes = np.array([sum(1 for f in d.iterdir() if f.is_file()) for d in sorted(LFW.iterdir()) if d.is_dir()])
        if sizes.sum() == n_images:
            return sizes, f"identity sizes of {LFW} ({sizes.size} folders)"
    sizes = np.minimum(rng.geometric(0.55, size=n_images), 50)
    sizes = sizes[: int(np.searchsorted(np.cumsum(sizes), n_images)) + 1]
    sizes[-1] -= sizes.sum() - n_images
    return sizes[sizes > 0], "synthetic geometric identity sizes"


def clustered(rng: np.random.Generator, sizes: np.ndarray, dim: int, spread: float, grid: bool) -> tuple:
    """Unit vectors around one random centre per identity (float32); on a 2^-11 grid when ``grid``."""
    labels = np.repeat(np.arange(sizes.size), sizes)
    x = rng.standard_normal((sizes.size, dim), dtype=np.float32)[labels]
    x += spread * rng.standard_normal(x.shape, dtype=np.float32)
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    if grid:
        x = np.round(x * 2048) / 2048
    return x, labels


def brute_force(emb: np.ndarray, labels: np.ndarray, keep: int, n_bins: int) -> dict[str, Any]:
    """The full matrix's upper triangle: counts, sorted genuine scores, top ``keep`` impostors, histogram and
    the threshold rule by masking."""
    full = emb @ emb.T
    i, j = np.triu_indices(len(emb), k=1)
    scores = full[i, j]
    same = labels[i] == labels[j]
    impostor = np.sort(scores[~same])[::-1]
    out: dict[str, Any] = {"n_impostor": impostor.size, "genuine": np.sort(scores[same]),
                           "histogram": np.bincount(score_bins(impostor, n_bins), minlength=n_bins)}
    out["kept"] = impostor[: keep if keep < impostor.size else impostor.size]
    for rate in FMR_TARGETS:
        allowed = int(Fraction(repr(rate)) * impostor.size)
        if allowed < 1:
            out[rate] = (None, None)
            continue
        higher = impostor[impostor > impostor[allowed]]
        threshold = higher.min() if higher.size else np.nextafter(impostor[allowed], np.float32(np.inf))
        out[rate] = (float(threshold), float(np.mean(scores[same] < threshold)))
    return out


def exactness(n: int, dim: int, rng: np.random.Generator) -> list[dict[str, Any]]:
    """Blocked scoring against the full matrix, for grid and plain embeddings and three block/cap settings."""
    sizes, _ = lfw_sizes(n, rng)
    rows = []
    for grid in (True, False):
        emb, labels = clustered(rng, sizes, dim, 1.0, grid)
        for block_bytes, max_kept in ((DEFAULT_BLOCK_BYTES, DEFAULT_MAX_KEPT), (20 * 50_000, DEFAULT_MAX_KEPT),
                                      (20 * 20_000, n * 4)):  # fmt: skip
            scores = score_pairs(emb, labels, max_kept=max_kept, block_bytes=block_bytes)
            result = operating_points(scores, replicates=0)
            brute = brute_force(emb, labels, scores.impostor.size, DEFAULT_BINS)
            points = {rate: (p.threshold, p.fnmr) for rate, p in zip(FMR_TARGETS, result.points.values(), strict=True)}
            exact_rates = [r for r, p in zip(FMR_TARGETS, result.points.values(), strict=True)
                           if p.threshold_from == "impostors"]  # fmt: skip
            checks = {
                "counts": (result.n_impostor, result.n_genuine) == (brute["n_impostor"], brute["genuine"].size),
                "genuine": np.array_equal(np.sort(scores.genuine), brute["genuine"]),
                "kept": np.array_equal(scores.impostor, brute["kept"]),
                "histogram": np.array_equal(scores.histogram, brute["histogram"]),
                "operating_points": all(points[rate] == brute[rate] for rate in exact_rates),
            }
            worst = max((abs(points[r][0] - brute[r][0]) for r in exact_rates), default=0.0)
            rows.append({"embeddings": "2^-11 grid" if grid else "plain float32", "n": n, "dim": dim,
                         "block_mib": round(block_bytes / MIB, 2), "n_kept": int(scores.impostor.size),
                         "exact_targets": ",".join(f"{r:g}" for r in exact_rates), **checks,
                         "max_threshold_diff": float(worst)})  # fmt: skip
    return rows


def timed(fn, *args, **kwargs) -> tuple[Any, float]:
    start = time.perf_counter()
    out = fn(*args, **kwargs)
    return out, time.perf_counter() - start


def lfw_size_run(dim: int, replicates: int, rng: np.random.Generator) -> dict[str, Any]:
    """Seconds after embedding for 7,701 LFW-like embeddings."""
    sizes, source = lfw_sizes(LFW_IMAGES, rng)
    emb, labels = clustered(rng, sizes, dim, 2.5, False)
    scores, score_s = timed(score_pairs, emb, labels)
    plain, points_s = timed(operating_points, scores, replicates=0)
    booted, bootstrap_s = timed(operating_points, scores, replicates=replicates)
    ident, ident_s = timed(evaluate_identification, emb, labels)
    return {"sizes": source, "n_images": int(emb.shape[0]), "n_identities": int(sizes.size),
            "n_genuine": plain.n_genuine, "n_impostor": plain.n_impostor, "n_kept": plain.n_kept,
            "score_s": score_s, "points_s": points_s, "bootstrap_s": bootstrap_s, "replicates": replicates,
            "total_without_bootstrap_s": score_s + points_s, "total_with_bootstrap_s": score_s + bootstrap_s,
            "identification_s": ident_s, "row": booted.to_row(), "identification": ident.to_row()}  # fmt: skip


def large_child(n: int, dim: int, replicates: int, threads: int, queue: multiprocessing.Queue) -> None:
    """The large run in its own process, so ru_maxrss is this run's peak alone."""
    with threadpool_limits(threads):
        rng = np.random.default_rng(1)
        emb = rng.standard_normal((n, dim), dtype=np.float32)
        emb /= np.linalg.norm(emb, axis=1, keepdims=True)
        sizes, source = lfw_sizes(LFW_IMAGES, rng)
        labels = np.repeat(np.arange(n), np.resize(sizes, n))[:n]  # LFW's size pattern repeated to n images
        baseline_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        scores, score_s = timed(score_pairs, emb, labels)
        result, points_s = timed(operating_points, scores, replicates=replicates)
        peak_mib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
        status = Path("/proc/self/status").read_text() if Path("/proc/self/status").is_file() else ""
        hwm = next((int(line.split()[1]) / 1024 for line in status.splitlines() if line.startswith("VmHWM")), None)
    keep = kept_size(scores.n_impostor, max(FMR_TARGETS), DEFAULT_MAX_KEPT)
    bound = memory_bound_bytes(n, scores.genuine.size, keep, DEFAULT_BLOCK_BYTES)
    queue.put({"n_images": n, "dim": dim, "labels": f"{source}, repeated", "n_identities": result.n_identities,
               "n_genuine": result.n_genuine, "n_impostor": result.n_impostor, "n_kept": result.n_kept,
               "kept_cutoff": result.kept_cutoff, "threads": threads, "score_s": score_s,
               "points_s": points_s, "replicates": replicates, "peak_rss_mib": peak_mib, "vm_hwm_mib": hwm,
               "rss_before_scoring_mib": baseline_mib, "input_mib": emb.nbytes / MIB,
               "bound_working_mib": bound / MIB, "bound_total_mib": baseline_mib + bound / MIB,
               "threshold_from": {k: p.threshold_from for k, p in result.points.items()},
               "row": result.to_row()})  # fmt: skip


def large_run(n: int, dim: int, replicates: int, threads: int) -> dict[str, Any]:
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=large_child, args=(n, dim, replicates, threads, queue))
    start = time.perf_counter()
    child.start()
    out = queue.get()
    child.join()
    return {**out, "wall_s_with_startup": time.perf_counter() - start}


def markdown(meta: dict[str, Any], exact: list[dict], lfw: dict, large: dict | None) -> str:
    from facebench.device import flags_text
    from facebench.tables import markdown_table  # pandas, only for the report

    flags = flags_text(meta["cpu_flags"])
    parts = ["# All-pairs verification and identification: exactness and cost",
             f"- CPU: {meta['cpu']} ({meta['cores']} cores), flags: {flags}\n- BLAS threads: {meta['threads']}, "
             f"numpy {meta['numpy']}, Python {meta['python']}, 1-min load {meta['load_average_1min']}\n"
             f"- command: `{meta['command']}`",
             "## Exactness against the full score matrix\n\n" + markdown_table(exact),
             "## 7,701 LFW-like embeddings (seconds after embedding)\n\n"
             f"{lfw['sizes']}; {lfw['n_identities']} identities, {lfw['n_genuine']:,} genuine and "
             f"{lfw['n_impostor']:,} impostor pairs, {lfw['n_kept']:,} impostors kept\n\n"
             + markdown_table([{k: lfw[k] for k in ("score_s", "points_s", "bootstrap_s", "replicates",
                                                     "total_without_bootstrap_s", "total_with_bootstrap_s",
                                                     "identification_s")}], floatfmt=".2f")]  # fmt: skip
    if large:
        keys = ("n_images", "n_impostor", "n_kept", "threads", "score_s", "points_s", "replicates", "peak_rss_mib",
                "vm_hwm_mib", "rss_before_scoring_mib", "bound_working_mib", "bound_total_mib")
        parts.append(f"## {large['n_images']:,} random {large['dim']}-d embeddings\n\n"
                     + markdown_table([{k: large[k] for k in keys}], floatfmt=".1f")
                     + f"\n\nthresholds from: {large['threshold_from']}")  # fmt: skip
    return "\n\n".join(parts) + "\n"


def main() -> None:
    args = parse_args()
    rng = np.random.default_rng(0)
    # first, while this process is small: Linux carries ru_maxrss across the child's exec, so a large parent
    # would set the child's floor (the child also reads VmHWM, its own address space's peak)
    large = large_run(args.large, args.dim, args.large_replicates, args.threads) if args.large else None
    meta = {**machine(args.threads), "command": "python benchmarks/all_pairs.py" + (" --quick" if args.quick else "")}
    with threadpool_limits(args.threads):
        exact = exactness(args.exact, args.dim, rng)
        for row in exact:
            print({k: v for k, v in row.items()})
        lfw = lfw_size_run(args.dim, args.replicates, rng)
        print({k: v for k, v in lfw.items() if k not in ("row", "identification")})
    if large:
        print({k: v for k, v in large.items() if k != "row"})
    grid_exact = all(row[k] for row in exact if row["embeddings"] == "2^-11 grid"
                     for k in ("counts", "genuine", "kept", "histogram", "operating_points"))  # fmt: skip
    print(f"exact on the grid embeddings: {grid_exact}")
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "all_pairs.json", {**meta, "exact": exact, "grid_exact": grid_exact, "lfw": lfw,
                                                    "large": large})  # fmt: skip
    write_text_atomic(args.out / "all_pairs.md", markdown(meta, exact, lfw, large))
    print(f"wrote {args.out / 'all_pairs.json'}, {args.out / 'all_pairs.md'}")


if __name__ == "__main__":
    main()
