"""Every deployment runtime and precision against PyTorch fp32 eager, same run, same threads.

Variants of one model (default ``mfn128`` with the pretrained MobileFaceNet weights):
  torch-fp32          PyTorch fp32 eager (the baseline every ratio is taken against)
  torch-bf16          weights and input cast to bf16 (where ``check_precision`` allows it)
  torch-fp16          on CUDA only
  ort-fp32            the exported fp32 ONNX file in ONNX Runtime
  ort-int8            static int8 QDQ (calibrated on --calib images) in ONNX Runtime
  ort-int8-dynamic    dynamic int8 (weights int8, activations quantised per batch) in ONNX Runtime
  openvino-fp32       the fp32 ONNX file in OpenVINO
  openvino-int8       the QDQ ONNX file in OpenVINO
Files are written by ``facebench.deploy.export.export_model`` into a temporary folder; a file
whose export fails its self-check is left out, with the reason printed. Static int8 calibrates
on --calib (default: the mtcnn-aligned CelebA cache, else ../shared/data/celeba centre-cropped,
else random noise, said so). Each variant is timed per iteration (``time_forward``) at every
--batches size with the same thread count (torch pinned; ONNX Runtime and OpenVINO sessions
take torch's count), in --rounds rounds that take the variants in turn; its speed-up is
torch-fp32's mean (and median) latency over its own at that batch. ``--lfw-pairs N`` also
scores each variant on the first N pairs' whole folds of LFW (aligned faces, no flip).

Targets (issue 14, mfn128, CPU with AVX-512 VNNI or AMX): best static int8 (ONNX Runtime or
OpenVINO) >= 2.0x at batch 1 and >= 3.0x at batch 64; ONNX Runtime fp32 >= 1.0x; int8 LFW
accuracy within 0.3 pp of fp32.

    .venv/bin/python benchmarks/runtimes.py [--model mfn128] [--weights FILE] [--threads N]
        [--batches 1,64] [--warmup 10] [--iters 50] [--rounds 5] [--calib DIR] [--lfw-pairs 6000] [--quick]
        [--out reports/benchmarks/runtimes]
"""

from __future__ import annotations

import argparse
import copy
import importlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import cv2
import numpy as np
import torch
from torch import nn

from facebench.allocator import tune_allocator
from facebench.deploy import load_deployed
from facebench.deploy.export import CHECK_IMAGES, ExportRequest, SelfCheckFailed, export_model, sample_images
from facebench.device import acceleration_flags, check_precision, cpu_name, flags_text, resolve_device, usable_cores
from facebench.errors import FacebenchError
from facebench.eval.verify import first_folds, load_pair_sets, score_pair_sets
from facebench.fileio import write_json_atomic, write_text_atomic
from facebench.input_spec import INPUT_SIZE, random_input
from facebench.modelspec import ResolvedModel, model_with_weights, seeded_zoo_model
from facebench.profiling.runtime import latency_summary, pinned_threads, time_forward
from facebench.tables import markdown_table

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
DEFAULT_WEIGHTS = SHARED / "models" / "mobilefacenet" / "mobilefacenet.pt"
ALIGNED_CELEBA = Path("/work/cache/celeba-mtcnn")  # `facebench align --detector mtcnn` of ../shared/data/celeba
RAW_CELEBA = SHARED / "data" / "celeba"
LFW_IMAGES = Path("/work/cache/lfw-mtcnn")  # the same alignment of ../shared/data/lfw
LFW_PAIRS = SHARED / "data" / "lfw" / "pairs.txt"
INT8_FLAGS = ("avx512_vnni", "amx_int8")  # fast int8 dot products: the int8 targets assume one of them
INT8_TARGETS = {1: 2.0, 64: 3.0}  # batch -> min speed-up of the best static int8 variant
LFW_TOLERANCE_PP = 0.3
CALIB_IMAGES, QUICK_CALIB_IMAGES = 300, 16
BASELINE = "torch-fp32"


@dataclass
class Variant:
    """One way to run the model: a module and the input dtype it takes."""

    name: str
    runtime: str
    precision: str
    model: nn.Module
    dtype: torch.dtype = torch.float32


@dataclass
class Calibration:
    """The images int8 ranges come from, how they are cropped, and where they came from."""

    images: list[Path]
    align: str
    note: str


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default="mfn128", help="zoo model name")
    parser.add_argument("--weights", type=Path, default=DEFAULT_WEIGHTS if DEFAULT_WEIGHTS.is_file() else None,
                        help="state dict for --model (default: the pretrained MobileFaceNet; else seeded random)")
    parser.add_argument("--device", default="cpu", help="cpu, cuda or auto (torch variants; on CUDA adds fp16)")
    parser.add_argument("--threads", type=int, default=usable_cores(), help="CPU threads for every variant")
    parser.add_argument("--batches", default="1,64", help="comma-separated batch sizes")
    parser.add_argument("--warmup", type=int, default=10)
    parser.add_argument("--iters", type=int, default=50, help="timed iterations per variant and batch")
    parser.add_argument("--rounds", type=int, default=5, help="the iterations are split into rounds over the variants")
    parser.add_argument("--calib", type=Path, help="calibration images for static int8 (default: aligned CelebA)")
    parser.add_argument("--calib-align", default="none", help="how --calib images are cropped (none, center, ...)")
    parser.add_argument("--calib-images", type=int, default=CALIB_IMAGES)
    parser.add_argument("--lfw-pairs", type=int, default=0, help="LFW accuracy on the first N pairs' folds (0: off)")
    parser.add_argument("--quick", action="store_true", help="random-weight model, batches 1,4, 2 iters, no LFW")
    parser.add_argument("--out", type=Path, default=ROOT / "reports" / "benchmarks" / "runtimes")
    args = parser.parse_args()
    if args.quick:
        args.weights, args.batches, args.warmup, args.iters = None, "1,4", 1, 2
        args.lfw_pairs, args.calib_images = 0, QUICK_CALIB_IMAGES
    args.batches = [int(b) for b in args.batches.split(",")]
    return args


def versions() -> dict[str, str | None]:
    """torch, onnxruntime and openvino versions (None where not installed)."""
    found: dict[str, str | None] = {"torch": torch.__version__}
    for name in ("onnxruntime", "openvino"):
        try:
            found[name] = str(importlib.import_module(name).__version__)
        except ImportError:
            found[name] = None
    return found


def load_model(name: str, weights: Path | None) -> tuple[nn.Module, str]:
    """The fp32 model in eval mode and a note on its weights."""
    if weights is None:
        return seeded_zoo_model(name), f"{name} with seeded random weights (no --weights): speed only"
    return model_with_weights(name, weights).eval(), f"{name} with weights {weights}"


def noise_images(folder: Path, count: int) -> list[Path]:
    """``count`` 112x112 images of uniform noise written into ``folder``."""
    rng = np.random.default_rng(0)
    folder.mkdir(parents=True, exist_ok=True)
    paths = [folder / f"noise_{i:03d}.png" for i in range(count)]
    for path in paths:
        cv2.imwrite(str(path), rng.integers(0, 256, (INPUT_SIZE, INPUT_SIZE, 3), dtype=np.uint8))
    return paths


def calibration(folder: Path | None, align: str, count: int, work: Path) -> Calibration:
    """--calib when given; else aligned CelebA, else the raw CelebA subset centre-cropped, else noise (noted)."""
    if folder is not None:
        return Calibration(sample_images(folder, count, "--calib"), align, f"{folder} (align {align})")
    for candidate, crop in ((ALIGNED_CELEBA, "none"), (RAW_CELEBA, "center")):
        if candidate.is_dir():
            return Calibration(sample_images(candidate, count, "--calib"), crop, f"{candidate} (align {crop})")
    return Calibration(noise_images(work / "noise", count), "none",
                       "random noise (no CelebA found): int8 speed is real, int8 ranges are not those of faces")


def export_files(model: nn.Module, name: str, work: Path, calib: Calibration) -> tuple[dict[str, Path], list[str]]:
    """fp32, static int8 (QDQ) and dynamic int8 ONNX files of ``model`` in ``work``, and a note for each file whose
    export failed its self-check (its variants are then left out)."""
    files, notes = {}, []
    for key, quantize in (("fp32", "none"), ("int8", "int8"), ("int8-dynamic", "int8-dynamic")):
        request = ExportRequest(model, work / f"{name}.{key}.onnx", {"spec": name, "model": name}, quantize=quantize,
                                align=calib.align, calib=calib.images if quantize == "int8" else [],
                                check=calib.images[:CHECK_IMAGES])  # fmt: skip
        try:
            files[key] = export_model(request).files[0]
        except SelfCheckFailed as exc:
            notes.append(f"{key} variants left out: export_model refused the file ({exc})")
    return files, notes


def torch_variants(model: nn.Module, device: torch.device) -> tuple[list[Variant], list[str]]:
    """torch fp32, and bf16 (and fp16 on CUDA) where the device runs them; notes for those skipped."""
    variants, notes = [Variant(BASELINE, "torch", "fp32", model.to(device))], []
    for precision in ("bf16", "fp16") if device.type == "cuda" else ("bf16",):
        try:
            dtype = check_precision(device, precision)
        except FacebenchError as exc:
            notes.append(f"torch-{precision} skipped: {exc}")
            continue
        cast = copy.deepcopy(model).to(device, dtype)
        variants.append(Variant(f"torch-{precision}", "torch", precision, cast, dtype))
    return variants, notes


def deployed_variants(files: dict[str, Path], openvino: bool) -> list[Variant]:
    """ONNX Runtime fp32/int8/int8-dynamic and (``openvino``) OpenVINO fp32/int8 of the files exported."""
    plan = [("ort", "onnxruntime", ("fp32", "int8", "int8-dynamic"))]
    if openvino:
        plan.append(("openvino", "openvino", ("fp32", "int8")))
    return [Variant(f"{prefix}-{key}", runtime, key, load_deployed(files[key], runtime))
            for prefix, runtime, keys in plan for key in keys if key in files]  # fmt: skip


def all_variants(model: nn.Module, args: argparse.Namespace, device: torch.device, work: Path,
                 found: dict[str, str | None]) -> tuple[list[Variant], Calibration, list[str]]:  # fmt: skip
    """Export the files into ``work`` and return every variant (BASELINE first), the calibration and notes."""
    calib = calibration(args.calib, args.calib_align, args.calib_images, work)
    files, export_notes = export_files(model, args.model, work, calib)
    variants, notes = torch_variants(model, device)
    notes += export_notes
    if found["openvino"] is None:
        notes.append("openvino is not installed: its variants are skipped")
    return variants + deployed_variants(files, found["openvino"] is not None), calib, notes


def time_variants(variants: list[Variant], batches: list[int], warmup: int, iters: int, rounds: int,
                  device: torch.device) -> list[dict[str, Any]]:  # fmt: skip
    """One row per (variant, batch): latency summary of ``iters`` per-iteration times and speed-up over BASELINE at
    that batch (of the means, and of the medians, which a busy machine's stalls move less). The iterations are split
    into ``rounds`` that take the variants in turn, so drift in the machine's load hits every variant alike; each
    variant warms up before its first round."""
    rows = []
    for batch in batches:
        x = random_input(batch).to(device)
        times: dict[str, list[np.ndarray]] = {variant.name: [] for variant in variants}
        for round_iters in np.array_split(np.arange(iters), min(rounds, iters)):
            for variant in variants:
                first = not times[variant.name]
                times[variant.name].append(time_forward(variant.model, x.to(variant.dtype),
                                                        warmup=warmup if first else 0, iters=len(round_iters)))
        timed = [{"variant": v.name, "runtime": v.runtime, "precision": v.precision, "batch": batch,
                  **latency_summary(np.concatenate(times[v.name]), batch),
                  "times_ms": np.concatenate(times[v.name]).tolist()} for v in variants]  # fmt: skip
        base = next(row for row in timed if row["variant"] == BASELINE)
        rows += [row | {"speedup": base["latency_ms_mean"] / row["latency_ms_mean"],
                        "speedup_p50": base["latency_ms_p50"] / row["latency_ms_p50"]} for row in timed]  # fmt: skip
    return rows


def lfw_accuracies(variants: list[Variant], count: int, device: torch.device) -> list[dict[str, Any]]:
    """LFW 10-fold accuracy (%) of each variant on the first ``count`` pairs' whole folds, and its gap to BASELINE."""
    pairs = load_pair_sets({"lfw": str(LFW_PAIRS)}, None, "--lfw-pairs", images_root=LFW_IMAGES)[0]
    n_folds = int(pairs.folds.max()) + 1
    keep = count * n_folds // len(pairs)
    pairs = pairs if keep >= n_folds else first_folds(pairs, keep, "--lfw-pairs")
    rows = []
    for variant in variants:
        resolved = ResolvedModel(variant.model, variant.name, variant.runtime, untrained=False)
        precision = variant.precision if variant.runtime == "torch" else None
        result = score_pair_sets(resolved, [pairs], align="none", device=device, batch_size=64, flip=False,
                                 precision=precision, progress=False)[0].result  # fmt: skip
        rows.append({"variant": variant.name, "pairs": result.n_pairs, "folds": result.n_folds,
                     "accuracy_pct": 100 * result.accuracy, "accuracy_std_pct": 100 * result.accuracy_std})
    baseline = next(row["accuracy_pct"] for row in rows if row["variant"] == BASELINE)
    return [row | {"delta_pp": row["accuracy_pct"] - baseline} for row in rows]


def check(name: str, value: float | None, passed: bool, reason: str | None = None) -> dict[str, Any]:
    """A target row: PASS/FAIL, or n/a with ``reason`` when the target does not apply (or was not measured)."""
    if value is None:
        reason = "not measured"
    status = f"n/a ({reason})" if reason else ("PASS" if passed else "FAIL")
    return {"target": name, "value": None if value is None else round(value, 3), "status": status}


def speed_targets(rows: list[dict[str, Any]], flags: dict[str, bool], general: str | None) -> list[dict[str, Any]]:
    """The issue's speed targets on these rows; int8 ones only where the CPU has VNNI or AMX (``general``: why
    none applies, or None)."""
    speedup = {(row["variant"], row["batch"]): row["speedup"] for row in rows}
    int8_reason = general or (None if any(flags[f] for f in INT8_FLAGS) else
                              "no AVX-512 VNNI or AMX on this CPU: int8 runs without fast int8 dot products")
    targets = []
    for batch, need in INT8_TARGETS.items():
        best = max((speedup[(v, batch)] for v in ("ort-int8", "openvino-int8") if (v, batch) in speedup), default=None)
        targets.append(check(f"best static int8 >= {need:g}x fp32 eager, batch {batch}", best,
                             best is not None and best >= need, int8_reason))  # fmt: skip
    for batch in sorted({row["batch"] for row in rows}):
        ort = speedup.get(("ort-fp32", batch))
        targets.append(check(f"ort-fp32 >= 1.0x fp32 eager, batch {batch}", ort, ort is not None and ort >= 1.0,
                             general))  # fmt: skip
    return targets


def accuracy_targets(lfw: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each int8 variant's LFW accuracy within LFW_TOLERANCE_PP of torch fp32 (value: the gap in pp)."""
    return [check(f"{row['variant']} LFW within {LFW_TOLERANCE_PP} pp of fp32", row["delta_pp"],
                  abs(row["delta_pp"]) <= LFW_TOLERANCE_PP) for row in lfw if "int8" in row["variant"]]  # fmt: skip


def speed_table(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The rows as printed: variant, runtime, precision, batch, ms mean ± std, img/s, speed-up (means; medians)."""
    return [{"variant": r["variant"], "runtime": r["runtime"], "precision": r["precision"], "batch": r["batch"],
             "ms": f"{r['latency_ms_mean']:.2f} ± {r['latency_ms_std']:.2f}", "img/s": f"{r['throughput_ips']:.1f}",
             "speed-up": f"{r['speedup']:.2f}x", "median speed-up": f"{r['speedup_p50']:.2f}x"}
            for r in rows]  # fmt: skip


def header(meta: dict[str, Any]) -> list[str]:
    """Lines naming the machine, threads, versions and settings."""
    flags = flags_text(meta["cpu_flags"])
    runtimes = ", ".join(f"{name} {version or 'missing'}" for name, version in meta["versions"].items())
    load = " -> ".join(f"{x:g}" for x in meta["load_average"])
    return [f"CPU: {meta['cpu']}", f"flags: {flags}", f"threads: {meta['threads']}, device {meta['device']}, "
            f"1-min load average {load} (before -> after; others' load slows multi-threaded torch most)",
            f"versions: {runtimes}", f"allocator: {meta['allocator']['allocator']} {meta['allocator']['mallopt']}",
            f"model: {meta['model_note']}", f"calibration: {meta['calibration']}",
            f"timing: warmup {meta['warmup']}, {meta['iters']} iterations in {meta['rounds']} interleaved rounds, "
            f"batches {meta['batches']}",
            *meta["notes"]]  # fmt: skip


def markdown(meta: dict[str, Any], rows: list[dict[str, Any]], lfw: list[dict[str, Any]],
             targets: list[dict[str, Any]]) -> str:  # fmt: skip
    parts = ["# Deployment runtimes vs PyTorch fp32 eager", "\n".join(f"- {line}" for line in header(meta)),
             markdown_table(speed_table(rows))]  # fmt: skip
    if lfw:
        parts.append("## LFW accuracy (aligned, no flip)\n\n" + markdown_table(lfw, floatfmt=".2f"))
    parts.append("## Targets\n\n" + markdown_table(targets))
    return "\n\n".join(parts) + "\n"


def print_results(meta: dict[str, Any], rows: list[dict[str, Any]], lfw: list[dict[str, Any]],
                  targets: list[dict[str, Any]]) -> None:  # fmt: skip
    print("\n".join(header(meta)))
    print(f"\n{'variant':<17} {'runtime':<12} {'precision':<13} {'batch':>5} {'ms mean ± std':>18} "
          f"{'img/s':>9} {'speed-up':>9} {'median speed-up':>16}")  # fmt: skip
    for row in speed_table(rows):
        print(f"{row['variant']:<17} {row['runtime']:<12} {row['precision']:<13} {row['batch']:>5} {row['ms']:>18} "
              f"{row['img/s']:>9} {row['speed-up']:>9} {row['median speed-up']:>16}")  # fmt: skip
    for row in lfw:
        print(f"LFW {row['variant']:<17} {row['accuracy_pct']:.2f} ± {row['accuracy_std_pct']:.2f} % "
              f"({row['pairs']} pairs, {row['folds']} folds), {row['delta_pp']:+.2f} pp vs fp32")  # fmt: skip
    for target in targets:
        print(f"{target['status']:<5} {target['target']}: {target['value']}")


def main() -> None:
    args = parse_args()
    allocator = tune_allocator()  # as every facebench command does: torch eager is not charged for page faults
    device = resolve_device(args.device)
    model, model_note = load_model(args.model, args.weights)
    found, load_before = versions(), os.getloadavg()[0]
    with tempfile.TemporaryDirectory(prefix="facebench-runtimes-") as tmp, pinned_threads(args.threads) as threads:
        variants, calib, notes = all_variants(model, args, device, Path(tmp), found)
        rows = time_variants(variants, args.batches, args.warmup, args.iters, args.rounds, device)
        lfw = lfw_accuracies(variants, args.lfw_pairs, device) if args.lfw_pairs else []
    flags = acceleration_flags()
    meta = {"cpu": cpu_name(), "cpu_flags": flags, "threads": threads, "device": str(device), "versions": found,
            "allocator": allocator,
            "load_average": [round(load_before, 2), round(os.getloadavg()[0], 2)], "model": args.model,
            "weights": str(args.weights) if args.weights else None, "model_note": model_note,
            "calibration": f"{len(calib.images)} images from {calib.note}", "warmup": args.warmup, "iters": args.iters,
            "rounds": min(args.rounds, args.iters), "batches": args.batches, "variants": [v.name for v in variants],
            "notes": notes}  # fmt: skip
    not_applicable = ("--quick: a random-weight model timed twice" if args.quick else
                      None if args.model == "mfn128" else f"targets are for mfn128, not {args.model}")
    targets = speed_targets(rows, flags, not_applicable) + accuracy_targets(lfw)
    print_results(meta, rows, lfw, targets)
    args.out.mkdir(parents=True, exist_ok=True)
    write_json_atomic(args.out / "runtimes.json", {**meta, "rows": rows, "lfw": lfw, "targets": targets})
    write_text_atomic(args.out / "runtimes.md", markdown(meta, rows, lfw, targets))
    print(f"wrote {args.out / 'runtimes.json'}, {args.out / 'runtimes.md'}")


if __name__ == "__main__":
    main()
