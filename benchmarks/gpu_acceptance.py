"""GPU acceptance run (issue 17): every GPU path of facebench, measured once, in at most 8 minutes.

Each step runs in a process of its own with its own time limit and is recorded as a row:
ok (with its figures), failed (with the first line of its error) or skipped (with the
missing prerequisite), so one broken path hides no other.

1. table2: ``facebench profile`` of r101, r18, mobilenet, ir100, mbf (and mfn128 once the
   zoo has it) in fp32, fp16 and bf16, at batch 1 and at batch 64 with channels-last off
   and on: latency and the three CUDA memory columns (allocator peak, reserved, NVML
   process total).
2. train: training with AMP, r18 and ir50 at batch 128 on in-memory random batches,
   through facebench's engine and through a bare AMP loop of the same model, head and
   optimiser (``train_speed.py``'s two loops; target engine / bare >= 0.95), samples/s
   and peak memory. Then ``torchrun --nproc_per_node=2 facebench train`` for a few steps
   with NCCL (facebench gives each rank the GPU of its LOCAL_RANK, and NCCL refuses two
   ranks on one GPU, so this needs two GPUs) and with gloo on the CPU: the DDP path runs.
3. distill: r101 teacher -> mobilenet and r18 students, none/kd/adv/emb through the
   engine: samples/s and the ratio to none (the teacher's forward is the expected cost),
   plus the teacher's own training rate; from these rates the hours of every training
   step of ``bench --preset paper`` (``paper_time.paper_plan``), checked against the plan
   ``bench --preset paper --dry-run`` prints, written to paper_plan.md.
4. video: ``profile --video`` on the street clip with mobilenet and r18, per frame and
   with ``--batch-frames 4``: fps and per-stage ms, and the ratio to ``video_fps.py``'s
   plain per-face loop on the same device.
5. onnx: ``facebench export`` of the pretrained MobileFaceNet (mfn128) to fp32 and fp16
   ONNX, profiled by onnxruntime's CUDA provider, latency against table2's torch fp16 row
   of mfn128; skipped with the reason while the export command, mfn128, its weights or
   onnxruntime-gpu are missing.

A step that would start with under 5 s of the run's budget (480 s) left is skipped.
``--smoke`` runs the same steps on the CPU with tiny sizes, one thread per process (fp32,
batch 1 and 2, channels-last at batch 2 only, a few training steps, an mbf teacher, a
synthetic clip with Haar, onnxruntime's CPU provider), so the script cannot rot while no
GPU is there (tests/test_gpu_acceptance.py runs it).

Writes ``--out`` (default reports/gpu/): summary.md, results.csv and results.json (with
the environment: GPU, driver, CUDA and torch versions), paper_plan.md, each command's
own result folder and logs/ (every command's output); prints a one-screen summary.
Exits 0 once the run is recorded: a failed step is a row, not an error.

    python benchmarks/gpu_acceptance.py                                # GPU machine, <= 8 min
    python benchmarks/gpu_acceptance.py --smoke --out /tmp/gpu-smoke   # same steps, CPU, tiny, < 1 min
"""

from __future__ import annotations

import argparse
import contextlib
import csv
import importlib.util
import json
import os
import re
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field, replace
from functools import partial
from pathlib import Path
from typing import Any

import torch
from paper_time import MS1MV2_CLASSES, paper_plan

from facebench.bench.presets import METHOD_ORDER, PAPER
from facebench.fileio import atomic_path, read_json, write_json_atomic, write_text_atomic
from facebench.models import list_models
from facebench.runfolder import CONFIG, METRICS, PROFILE, VIDEO_PROFILE_STEM

ROOT = Path(__file__).resolve().parents[1]
SHARED = ROOT.parent / "shared"
CLIP = SHARED / "data" / "videos" / "facenet_pytorch_video.mp4"
MFN = "mfn128"
MFN_WEIGHTS = SHARED / "models" / "mobilefacenet" / "mobilefacenet.pt"
OK, FAILED, SKIPPED = "ok", "failed", "skipped"
TRAIN_TARGET = 0.95  # engine / bare loop samples/s
MIN_STEP_S = 5.0  # a step that would start with less of the run's budget left is skipped
GROUPS = ("table2", "train", "distill", "paper", "video", "onnx")
PLAIN = "plain per-face loop"


@dataclass(frozen=True)
class Sizes:
    """What a mode fixes: device, models, sizes, step counts and time limits."""

    device: str
    threads: int | None  # CPU threads pinned in every command (a loaded 2-core machine swings otherwise)
    budget_s: float  # the whole run
    limits: dict[str, float]  # seconds per step, by group
    profile_models: tuple[str, ...]
    precisions: tuple[str, ...]
    profile_settings: tuple[tuple[int, bool], ...]  # (batch, channels-last) of each profile run; batch 1 first
    profile_warmup: int
    profile_iters: int
    train_models: tuple[str, ...]
    batch: int  # training and distillation, per step
    warmup_steps: int  # untimed steps first; also the engine's log window
    timed_steps: int  # a multiple of warmup_steps
    rounds: int  # engine and bare loop alternate this many times (median)
    workers: int  # DataLoader workers of every training loop
    ddp_model: str
    ddp_batch: int  # per process
    faces: tuple[int, int]  # identities x images: the identity folders the DDP runs train on
    teacher: str
    students: tuple[str, ...]
    classes: int  # margin head classes in distillation (MS1MV2's on the GPU)
    video_models: tuple[str, ...]
    video_frames: int
    batch_frames: int
    detector: str  # mtcnn falls back to haar where its weights are not at hand (fetching them needs PyPI)
    onnx_precisions: tuple[str, ...]
    torch_reference: str  # exported models are compared with table2's mfn128 row in this precision at batch 1


GPU = Sizes(
    device="cuda", threads=None, budget_s=480,
    limits={"table2": 75, "train": 120, "distill": 150, "paper": 60, "video": 120, "onnx": 90},
    profile_models=("r101", "r18", "mobilenet", "ir100", "mbf"), precisions=("fp32", "fp16", "bf16"),
    profile_settings=((1, False), (64, False), (64, True)), profile_warmup=10, profile_iters=30,
    train_models=("r18", "ir50"), batch=PAPER.batch_size, warmup_steps=10, timed_steps=30, rounds=2, workers=8,
    ddp_model="r18", ddp_batch=8, faces=(8, 8),
    teacher=PAPER.teacher, students=("mobilenet", "r18"), classes=MS1MV2_CLASSES,
    video_models=("mobilenet", "r18"), video_frames=120, batch_frames=4, detector="mtcnn",
    onnx_precisions=("fp32", "fp16"), torch_reference="fp16",
)  # fmt: skip
SMOKE = replace(
    GPU, device="cpu", threads=1, budget_s=120, limits=dict.fromkeys(GROUPS, 45.0),
    profile_models=("mobilenet",), precisions=("fp32",), profile_settings=((1, False), (2, True)), profile_warmup=1,
    profile_iters=2, train_models=("mobilenet",), batch=2, warmup_steps=1, timed_steps=2, rounds=1, workers=0,
    ddp_model="mobilenet", ddp_batch=2, faces=(4, 4), teacher="mbf", students=("mobilenet",), classes=8,
    video_models=("mobilenet",), video_frames=8, detector="haar", onnx_precisions=("fp32",), torch_reference="fp32",
)  # fmt: skip


class Skip(Exception):
    """A step whose prerequisite is missing: recorded as skipped, with this reason."""


class CommandFailed(Exception):
    """A command exited non-zero or ran out of time; the message is the reason."""


@dataclass
class Outcome:
    """What a step that ran gives: its figures (one dict per row) and a one-line headline."""

    rows: list[dict[str, Any]]
    headline: str


@dataclass
class StepResult:
    """One step as recorded."""

    group: str
    name: str
    status: str
    seconds: float
    reason: str = ""
    headline: str = ""
    rows: list[dict[str, Any]] = field(default_factory=list)


@dataclass(frozen=True)
class Step:
    """A named part of the run; ``run(timeout_s)`` returns its Outcome or raises (Skip: prerequisite missing)."""

    group: str
    name: str
    run: Callable[[float], Outcome]


@dataclass
class Context:
    """The run: its sizes, folders, the results so far and the log the current step's commands append to."""

    sizes: Sizes
    smoke: bool
    out: Path
    scratch: Path  # deleted at the end: synthetic data, checkpoints, exported files
    results: list[StepResult] = field(default_factory=list)
    log: Path | None = None

    def result(self, group: str, name: str) -> StepResult | None:
        return next((r for r in self.results if (r.group, r.name) == (group, name)), None)

    def rows(self, group: str, name: str | None = None) -> list[dict[str, Any]]:
        """The figures of the steps of ``group`` (named ``name``) that ran."""
        return [row for r in self.results if r.group == group and name in (None, r.name) for row in r.rows]

    def run(self, command: list[Any], timeout: float, cwd: Path = ROOT) -> str:
        """Run ``command`` in a process group of its own; its stdout, or CommandFailed (killed at ``timeout``)."""
        words = [str(word) for word in command]
        env = {**os.environ, "COLUMNS": "200"}  # Rich wraps at 80 columns without a terminal
        if self.sizes.threads:
            env["OMP_NUM_THREADS"] = str(self.sizes.threads)  # torch's default, also before --threads applies
        with subprocess.Popen(words, cwd=cwd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                              start_new_session=True) as process:  # fmt: skip
            try:
                stdout, stderr = process.communicate(timeout=timeout)
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)  # torchrun's ranks and loader workers too
                stdout, stderr = process.communicate()
                self._write_log(words, stdout, stderr)
                raise CommandFailed(f"timed out after {timeout:.0f} s") from None
        self._write_log(words, stdout, stderr)
        if process.returncode != 0:
            raise CommandFailed(failure_reason(stderr + stdout, process.returncode))
        return stdout

    def facebench(self, args: list[Any], timeout: float, cwd: Path = ROOT) -> str:
        return self.run([sys.executable, "-m", "facebench", *args], timeout, cwd)

    def helper(self, name: str, timeout: float, **params: Any) -> list[dict[str, Any]]:
        """This script's ``--step name`` in a process of its own: its rows."""
        fd, path = tempfile.mkstemp(prefix=f"{name}-", suffix=".json", dir=self.scratch)
        os.close(fd)
        self.run([sys.executable, Path(__file__).resolve(), "--step", name, "--params", json.dumps(params),
                  "--result", path, *(["--smoke"] if self.smoke else [])], timeout)  # fmt: skip
        return json.loads(Path(path).read_text())

    def _write_log(self, words: list[str], stdout: str, stderr: str) -> None:
        if self.log is not None:
            self.log.parent.mkdir(parents=True, exist_ok=True)
            with self.log.open("a", encoding="utf-8") as handle:
                handle.write(f"$ {' '.join(words)}\n{stdout}{stderr}\n")


def failure_reason(output: str, returncode: int) -> str:
    """The line that says why a command failed: facebench's 'error:' line, else the last exception line,
    else the last line (Rich's box characters stripped)."""
    lines = [line.strip("│╭╮╰╯─┃━ \t") for line in output.splitlines()]
    lines = [line for line in lines if line]
    rank = r"^(\[\w+\]:\s*)?"  # torchrun may prefix a rank's lines with [rankN]:
    for pattern in (rank + "error:", rank + r"[\w.]*(Error|Exception):"):
        found = [line for line in lines if re.match(pattern, line)]
        if found:
            return found[-1][:300]
    return lines[-1][:300] if lines else f"exit code {returncode}"


def threads_option(sizes: Sizes) -> list[Any]:
    return ["--threads", sizes.threads] if sizes.threads else []


def skip(reason: str, timeout: float) -> Outcome:
    """A step that cannot run here (use with partial)."""
    raise Skip(reason)


# ---- 1. Table 2 -----------------------------------------------------------------------------


def table2_steps(ctx: Context, with_mfn: bool) -> list[Step]:
    sizes = ctx.sizes
    models = [*sizes.profile_models, *([MFN] if with_mfn else [])]
    steps = [] if with_mfn else [Step("table2", MFN, partial(skip, f"{MFN} is not in facebench.models.list_models()"))]
    for precision in sizes.precisions:
        for batch, channels_last in sizes.profile_settings:
            name = f"{precision} batch {batch}" + (" channels-last" if channels_last else "")
            steps.append(Step("table2", name, partial(profile_step, ctx, models, precision, batch, channels_last)))
    return steps


def profile_step(ctx: Context, models: list[str], precision: str, batch: int, channels_last: bool,
                 timeout: float) -> Outcome:
    """``facebench profile`` of ``models`` at one setting; its rows from profile.json."""
    sizes = ctx.sizes
    folder = ctx.out / "table2" / f"{precision}-b{batch}{'-cl' if channels_last else ''}"
    ctx.facebench(["profile", "--models", ",".join(models), "--device", sizes.device, "--precision", precision,
                   "--batch-size", batch, "--warmup", sizes.profile_warmup, "--iters", sizes.profile_iters,
                   "--out", folder, *threads_option(sizes), *(["--channels-last"] if channels_last else [])],
                  timeout)  # fmt: skip
    rows = read_json(folder / PROFILE)["rows"]
    return Outcome(rows, "ms: " + ", ".join(f"{r['model']} {r['latency_ms_mean']:.2f}" for r in rows))


# ---- 2. training ----------------------------------------------------------------------------


def train_steps(ctx: Context) -> list[Step]:
    steps = [Step("train", f"{m} engine vs bare AMP", partial(train_step, ctx, m)) for m in ctx.sizes.train_models]
    nccl = partial(skip, "--smoke runs on the CPU") if ctx.smoke else partial(ddp_step, ctx, "cuda")
    gloo = partial(ddp_step, ctx, "cpu")
    return [*steps, Step("train", "ddp nccl x2", nccl), Step("train", "ddp gloo x2 (cpu)", gloo)]


def train_step(ctx: Context, model: str, timeout: float) -> Outcome:
    [row] = ctx.helper("train", timeout, model=model)
    verdict = "" if row["ratio"] >= TRAIN_TARGET else f", below the {TRAIN_TARGET} target"
    return Outcome([row], f"engine {row['engine_ips']:.0f} / bare {row['bare_ips']:.0f} img/s = {row['ratio']:.3f}"
                          f"{verdict}; peak MB {row['engine_peak_mb']:.0f} / {row['bare_peak_mb']:.0f}")


def ddp_step(ctx: Context, device: str, timeout: float) -> Outcome:
    """``torchrun --nproc_per_node=2 facebench train`` for a few steps (NCCL on CUDA, gloo on the CPU)."""
    sizes = ctx.sizes
    run = ctx.scratch / f"ddp-{device}"
    shutil.rmtree(run, ignore_errors=True)
    ctx.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", "-m", "facebench",
             "train", "--model", sizes.ddp_model, "--data", faces_folder(ctx), "--out", run, "--device", device,
             "--epochs", 1, "--batch-size", sizes.ddp_batch, "--warmup-epochs", 0, "--workers", 0,
             "--log-every", 1, "--checkpoint-every", 0, *threads_option(sizes)], timeout)  # fmt: skip
    config = read_json(run / CONFIG)
    with (run / METRICS).open(newline="") as handle:
        last = list(csv.DictReader(handle))[-1]
    if config["world_size"] != 2:
        raise RuntimeError(f"the run reports world_size {config['world_size']}, not 2")
    backend = "nccl" if device == "cuda" else "gloo"
    row = {"model": sizes.ddp_model, "device": device, "backend": backend, "world_size": config["world_size"],
           "steps": config["total_steps"], "samples_per_s": float(last["samples_per_s"]), "loss": float(last["loss"])}
    return Outcome([row], f"2 ranks ({backend}), {row['steps']} steps, last {row['samples_per_s']:.0f} img/s")


def faces_folder(ctx: Context) -> Path:
    """Identity folders of random smooth 112x112 JPEGs (``sizes.faces``) in the scratch folder, made once."""
    import cv2
    import numpy as np

    root = ctx.scratch / "faces"
    if root.is_dir():
        return root
    building = ctx.scratch / "faces.partial"
    rng = np.random.default_rng(0)
    identities, images = ctx.sizes.faces
    for i in range(identities):
        (building / f"id{i:03d}").mkdir(parents=True)
        for k in range(images):
            small = rng.integers(0, 256, size=(14, 14, 3), dtype=np.uint8)
            cv2.imwrite(str(building / f"id{i:03d}" / f"{k:03d}.jpg"), cv2.resize(small, (112, 112)))
    building.rename(root)
    return root


# ---- 3. distillation and the paper preset's hours -------------------------------------------


def distill_steps(ctx: Context) -> list[Step]:
    teacher = ctx.sizes.teacher
    steps = [Step("distill", f"{teacher} training (teacher)", partial(distill_step, ctx, teacher, ("none",)))]
    steps += [Step("distill", f"{teacher} -> {student}", partial(distill_step, ctx, student, METHOD_ORDER))
              for student in ctx.sizes.students]  # fmt: skip
    return [*steps, Step("paper", "bench --preset paper --dry-run", partial(paper_step, ctx))]


def distill_step(ctx: Context, student: str, methods: tuple[str, ...], timeout: float) -> Outcome:
    rows = ctx.helper("distill", timeout, student=student, methods=list(methods))
    parts = [f"{r['method']} {r['samples_per_s']:.0f}" + ("" if r["method"] == "none" else f" ({r['vs_none']:.2f})")
             for r in rows]  # fmt: skip
    return Outcome(rows, ", ".join(parts) + " img/s")


def paper_step(ctx: Context, timeout: float) -> Outcome:
    """Hours of each training step of the paper preset from the measured rates, beside the plan bench prints."""
    from facebench.bench.plan import plan_steps

    rates = {(r["student"], r["method"]): r["samples_per_s"] for r in ctx.rows("distill")}
    plan = paper_plan(rates.get((ctx.sizes.teacher, "none")), rates)
    printed = ctx.facebench(["bench", "--preset", "paper", "--dry-run"], timeout)
    steps = plan_steps(PAPER, Path("runs") / PAPER.name, Path("reports"))  # bench's defaults, as run above
    missing = [s.title for k, s in enumerate(steps, start=1) if f"{k}. {s.command()}" not in printed]
    if missing:
        raise RuntimeError(f"bench --preset paper --dry-run did not print the planned step(s) {', '.join(missing)}")
    rows = [{"plan_step": k, "title": s.title, "samples_per_s": plan[s.title][0], "gpu_hours": plan[s.title][1],
             "command": s.command()} for k, s in enumerate(steps, start=1) if s.title in plan]  # fmt: skip
    write_paper_plan(ctx, rows)
    hours = [r["gpu_hours"] for r in rows if r["gpu_hours"] is not None]
    return Outcome(rows, f"{sum(hours):.1f} GPU-h ({sum(hours) / 24:.1f} days) for {len(hours)} of {len(rows)} "
                         "training steps (paper_plan.md)")


def write_paper_plan(ctx: Context, rows: list[dict[str, Any]]) -> None:
    from facebench.tables import markdown_table

    total = sum(r["gpu_hours"] for r in rows if r["gpu_hours"] is not None)
    sizes = ctx.sizes
    text = (f"# `facebench bench --preset paper`: hours from measured step rates\n\n"
            f"Rates: facebench's engine on in-memory random batches (decoding left out, so a lower bound), "
            f"batch {sizes.batch}, AMP on CUDA, ArcFace head over {sizes.classes} classes, {sizes.device}, teacher "
            f"{sizes.teacher} (the preset's: {PAPER.teacher}); hours = MS1MV2's images x epochs / rate "
            f"(`paper_time.paper_plan`). Verification and profiling (minutes) are left out. Steps and commands "
            f"as `facebench bench --preset paper --dry-run` prints them.\n\n"
            f"{markdown_table(rows)}\n\nTotal: {total:.1f} GPU-hours ({total / 24:.2f} days).\n")  # fmt: skip
    write_text_atomic(ctx.out / "paper_plan.md", text)


# ---- 4. video -------------------------------------------------------------------------------


def video_steps(ctx: Context) -> list[Step]:
    detector, note = video_detector_choice(ctx.sizes.detector)
    k = ctx.sizes.batch_frames
    steps = [Step("video", PLAIN, partial(plain_step, ctx, detector, note))]
    for label, batch_frames in (("per frame", 1), (f"--batch-frames {k}", k)):
        steps.append(Step("video", f"profile --video {label}",
                          partial(video_profile_step, ctx, detector, note, batch_frames)))  # fmt: skip
    return steps


def video_detector_choice(detector: str) -> tuple[str, str]:
    """The detector the video steps use, and a note when it is not the one asked for: MTCNN needs its weights
    cached or facenet-pytorch installed (fetching them needs PyPI, which a GPU machine may not reach), else Haar."""
    if detector != "mtcnn":
        return detector, ""
    from facebench.data.mtcnn_weights import WEIGHT_SHA256, cache_dir

    folder = cache_dir() / "mtcnn"
    if all((folder / name).is_file() for name in WEIGHT_SHA256) or importlib.util.find_spec("facenet_pytorch"):
        return detector, ""
    return "haar", f"; haar: no MTCNN weights in {folder} and no facenet-pytorch"


def clip_for(ctx: Context) -> Path:
    """The street clip; with --smoke a tiny synthetic clip instead (made once)."""
    if not ctx.smoke:
        if not CLIP.is_file():
            raise Skip(f"{CLIP} is missing")
        return CLIP
    import cv2
    import numpy as np

    path = ctx.scratch / "smoke.mp4"
    if not path.is_file():
        rng = np.random.default_rng(0)
        writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (160, 120))
        for _ in range(ctx.sizes.video_frames):
            writer.write(cv2.resize(rng.integers(0, 256, size=(15, 20, 3), dtype=np.uint8), (160, 120)))
        writer.release()
    return path


def plain_step(ctx: Context, detector: str, note: str, timeout: float) -> Outcome:
    rows = ctx.helper("video", timeout, clip=str(clip_for(ctx)), detector=detector)
    return Outcome(rows, ", ".join(f"{r['model']} {r['fps']:.1f} fps" for r in rows) + note)


def video_profile_step(ctx: Context, detector: str, note: str, batch_frames: int, timeout: float) -> Outcome:
    """``profile --video``: per-stage ms and fps per model, and the ratio to the plain loop's fps."""
    sizes = ctx.sizes
    folder = ctx.out / "video" / f"batch-frames-{batch_frames}"
    ctx.facebench(["profile", "--video", clip_for(ctx), "--models", ",".join(sizes.video_models), "--device",
                   sizes.device, "--detector", detector, "--max-frames", sizes.video_frames, "--batch-frames",
                   batch_frames, "--warmup", sizes.profile_warmup, "--out", folder, *threads_option(sizes)],
                  timeout)  # fmt: skip
    plain = {r["model"]: r["fps"] for r in ctx.rows("video", PLAIN)}
    rows = read_json(folder / f"{VIDEO_PROFILE_STEM}.json")["rows"]
    for row in rows:
        row["plain_fps"] = plain.get(row["model"])
        row["vs_plain"] = row["fps"] / row["plain_fps"] if row["plain_fps"] else None
    parts = [f"{r['model']} {r['fps']:.1f} fps" + (f" ({r['vs_plain']:.2f}x plain)" if r["vs_plain"] else "")
             for r in rows]  # fmt: skip
    return Outcome(rows, ", ".join(parts) + note)


# ---- 5. exported models ---------------------------------------------------------------------


def onnx_steps(ctx: Context, with_mfn: bool) -> list[Step]:
    steps = []
    for precision in ctx.sizes.onnx_precisions:
        steps += [Step("onnx", f"export {precision}", partial(export_step, ctx, with_mfn, precision)),
                  Step("onnx", f"onnxruntime {precision}", partial(onnxruntime_step, ctx, precision))]  # fmt: skip
    return steps


def onnx_file(ctx: Context, precision: str) -> Path:
    return ctx.scratch / f"{MFN}-{precision}.onnx"


def export_step(ctx: Context, with_mfn: bool, precision: str, timeout: float) -> Outcome:
    """``facebench export`` of mfn128 with its pretrained weights; skipped while anything it needs is missing."""
    if not with_mfn:
        raise Skip(f"{MFN} is not in facebench.models.list_models()")
    if not MFN_WEIGHTS.is_file():
        raise Skip(f"{MFN_WEIGHTS} is missing")
    try:
        ctx.facebench(["export", "--help"], timeout)
    except CommandFailed as exc:
        raise Skip(f"facebench export is not available ({exc})") from None
    target = onnx_file(ctx, precision)
    ctx.facebench(["export", "--model", MFN, "--weights", MFN_WEIGHTS, "--format", "onnx", "--precision", precision,
                   "--out", target], timeout)  # fmt: skip
    if not target.is_file():
        raise RuntimeError(f"facebench export exited 0 without writing {target.name}")
    row = {"model": MFN, "precision": precision, "size_mb": target.stat().st_size / 1e6}
    return Outcome([row], f"{target.name}, {row['size_mb']:.2f} MB")


def onnxruntime_step(ctx: Context, precision: str, timeout: float) -> Outcome:
    """``profile --runtime onnxruntime`` of the exported file on the run's device; latency against torch's."""
    export = ctx.result("onnx", f"export {precision}")
    if export is None or export.status != OK:
        raise Skip(f"export {precision}: {export.reason if export else 'not run'}")
    provider = "CUDAExecutionProvider" if ctx.sizes.device == "cuda" else "CPUExecutionProvider"
    try:
        import onnxruntime
    except ImportError:
        raise Skip("onnxruntime is not installed") from None
    if provider not in onnxruntime.get_available_providers():
        raise Skip(f"onnxruntime has no {provider} (install onnxruntime-gpu)")
    sizes, folder = ctx.sizes, ctx.out / "onnx" / f"onnxruntime-{precision}"
    batch = sizes.profile_settings[0][0]
    ctx.facebench(["profile", "--models", onnx_file(ctx, precision), "--runtime", "onnxruntime", "--device",
                   sizes.device, "--batch-size", batch, "--warmup", sizes.profile_warmup, "--iters",
                   sizes.profile_iters, "--out", folder, *threads_option(sizes)], timeout)  # fmt: skip
    [row] = read_json(folder / PROFILE)["rows"]
    row |= {"model": onnx_file(ctx, precision).name, "precision": precision, "runtime": "onnxruntime"}
    reference = [r["latency_ms_mean"] for r in ctx.rows("table2") if r["model"] == MFN and r["batch"] == batch
                 and r["dtype"] == sizes.torch_reference and not r["channels_last"]]  # fmt: skip
    row["vs_torch"] = row["latency_ms_mean"] / reference[0] if reference else None
    versus = f" ({row['vs_torch']:.2f}x torch {sizes.torch_reference})" if reference else ""
    return Outcome([row], f"{row['latency_ms_mean']:.3f} ms{versus}")


# ---- helpers: run as `gpu_acceptance.py --step NAME` in a process of their own -------------


def with_peak_memory(device: Any, fn: Callable[[], float]) -> tuple[float, float]:
    """``fn()`` and the peak memory it took, MB: CUDA allocator peak, or CPU peak RSS growth."""
    from facebench.profiling.memory import CpuPeakRss, cuda_peak_reset, cuda_peaks_mb

    if device.type == "cuda":
        cuda_peak_reset(device)
        value = fn()
        return value, cuda_peaks_mb(device)["mem_alloc_peak_mb"]
    with CpuPeakRss() as rss:
        value = fn()
    return value, rss.growth_mb


def peak_memory_kind(device: Any) -> str:
    return "CUDA allocator peak" if device.type == "cuda" else "CPU peak RSS growth"


def helper_train(sizes: Sizes, model: str) -> list[dict[str, Any]]:
    """train_speed.py's engine and bare AMP loops in alternating rounds: median samples/s, peak memory."""
    from train_speed import RandomFaces, bare_loop, engine_loop

    from facebench.device import resolve_device

    device = resolve_device(sizes.device)
    amp = device.type == "cuda"
    amp_dtype = (torch.bfloat16 if torch.cuda.is_bf16_supported() else torch.float16) if amp else None
    data = RandomFaces((sizes.warmup_steps + sizes.timed_steps) * sizes.batch)
    args = (model, data, sizes.batch, sizes.warmup_steps, sizes.timed_steps, device)
    loops = {"bare": lambda: bare_loop(*args, amp_dtype, sizes.workers),
             "engine": lambda: engine_loop(*args, amp, sizes.workers)}  # fmt: skip
    rates: dict[str, list[float]] = {name: [] for name in loops}
    peaks: dict[str, list[float]] = {name: [] for name in loops}
    for k in range(sizes.rounds):
        for name in list(loops) if k % 2 == 0 else list(loops)[::-1]:  # alternate who goes first
            rate, peak = with_peak_memory(device, loops[name])
            rates[name].append(rate)
            peaks[name].append(peak)
    engine, bare = statistics.median(rates["engine"]), statistics.median(rates["bare"])
    return [{"model": model, "batch": sizes.batch, "amp": str(amp_dtype).removeprefix("torch.") if amp else "off",
             "timed_steps": sizes.timed_steps, "rounds": sizes.rounds, "engine_ips": engine, "bare_ips": bare,
             "ratio": engine / bare, "target": TRAIN_TARGET, "engine_peak_mb": max(peaks["engine"]),
             "bare_peak_mb": max(peaks["bare"]), "peak_memory": peak_memory_kind(device)}]  # fmt: skip


def helper_distill(sizes: Sizes, student: str, methods: list[str]) -> list[dict[str, Any]]:
    """Engine samples/s and peak memory of ``student`` under each method from a random-weight teacher."""
    from train_speed import RandomFaces

    from facebench.device import resolve_device

    device = resolve_device(sizes.device)
    data = RandomFaces((sizes.warmup_steps + sizes.timed_steps) * sizes.batch)
    data.labels %= sizes.classes
    data.num_classes = sizes.classes  # what kd checks against the teacher's head
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        teacher = save_teacher(sizes.teacher, sizes.classes, Path(tmp)) if set(methods) - {"none"} else None
        for method in methods:
            rate, peak = with_peak_memory(device, partial(distill_rate, sizes, method, teacher, student, data, device))
            rows.append({"teacher": sizes.teacher, "student": student, "method": method, "batch": sizes.batch,
                         "classes": sizes.classes, "samples_per_s": rate, "peak_mb": peak,
                         "peak_memory": peak_memory_kind(device)})  # fmt: skip
    base = next((r["samples_per_s"] for r in rows if r["method"] == "none"), None)
    for row in rows:
        row["vs_none"] = row["samples_per_s"] / base if base else None
    return rows


def save_teacher(name: str, classes: int, folder: Path) -> Path:
    """A random-weight ``name`` with an ArcFace head over ``classes``, as a training checkpoint (what kd needs)."""
    from facebench.checkpoint import save_checkpoint
    from facebench.models import create_model
    from facebench.models.heads import create_head
    from facebench.train.state import seed_everything

    seed_everything(0)
    model, head = create_model(name), create_head("arcface", 512, classes)
    return save_checkpoint(folder / "checkpoint.pt", model, model_name=name, embedding_size=512,
                           config={"head": "arcface"}, extra={"training": {"modules": {"head": head.state_dict()}}})


def distill_rate(sizes: Sizes, method: str, teacher: Path | None, student: str, data: Any, device: Any) -> float:
    """Samples/s facebench's engine logs for ``method`` over the timed steps (as distill_speed.py)."""
    from facebench.distill.config import DistillConfig
    from facebench.distill.methods import method_spec
    from facebench.distill.teacher import resolve_teacher
    from facebench.models import create_model
    from facebench.models.heads import create_head
    from facebench.train.distributed import DistInfo
    from facebench.train.engine import Engine, Objective, RunSpec
    from facebench.train.losses import margin_loss
    from facebench.train.state import seed_everything

    config = DistillConfig(model=student, teacher=str(teacher), method=method, epochs=1, batch_size=sizes.batch,
                           lr=0.01, warmup_epochs=0, workers=sizes.workers, log_every=sizes.warmup_steps,
                           checkpoint_every=0, amp=device.type == "cuda", device=device.type)  # fmt: skip
    config.alpha = config.resolved_alpha()
    seed_everything(0)
    modules = {"model": create_model(student), "head": create_head("arcface", 512, sizes.classes)}
    objective = Objective("main", modules, margin_loss, lr=0.01)
    plan = method_spec(method).build(config, resolve_teacher(str(teacher)) if method != "none" else None,
                                     objective, data)  # fmt: skip
    with tempfile.TemporaryDirectory() as tmp:
        run = RunSpec(Path(tmp), student, 512, {"benchmark": True})
        Engine(config, plan.objectives, data, run, DistInfo(0, 1, 0, device), frozen=plan.frozen).fit()
        with (Path(tmp) / METRICS).open(newline="") as handle:
            timed = list(csv.DictReader(handle))[1:]  # the first row holds the warm-up steps
    seconds = sum(sizes.warmup_steps * sizes.batch / float(row["samples_per_s"]) for row in timed)
    return len(timed) * sizes.warmup_steps * sizes.batch / seconds


def helper_video(sizes: Sizes, clip: str, detector: str) -> list[dict[str, Any]]:
    """video_fps.py's plain loop (detect, then warp and embed one face at a time) per model: fps."""
    from video_fps import plain_loop, timed

    from facebench.device import resolve_device
    from facebench.models import create_model
    from facebench.profiling.frames import probe_video
    from facebench.profiling.video import video_detector

    device = resolve_device(sizes.device)
    count = probe_video(Path(clip)).frame_count
    frames = min(sizes.video_frames, count) if count > 0 else sizes.video_frames
    rows = []
    for name in sizes.video_models:
        model = create_model(name).eval().to(device)
        faces = video_detector(detector, device)
        timed(plain_loop, None, Path(clip), faces, model, device, 2 * sizes.batch_frames)  # warm-up, untimed
        wall, cpu, embeddings = timed(plain_loop, None, Path(clip), faces, model, device, frames)
        rows.append({"model": name, "detector": detector, "frames": frames, "faces": len(embeddings),
                     "fps": frames / wall, "cpu_ms_per_frame": 1e3 * cpu / frames})  # fmt: skip
    return rows


HELPERS: dict[str, Callable[..., list[dict[str, Any]]]] = {
    "train": helper_train, "distill": helper_distill, "video": helper_video,
}  # fmt: skip


# ---- the run ----------------------------------------------------------------------------------


def plan_run(ctx: Context) -> list[Step]:
    with_mfn = MFN in list_models()
    return [*table2_steps(ctx, with_mfn), *train_steps(ctx), *distill_steps(ctx), *video_steps(ctx),
            *onnx_steps(ctx, with_mfn)]  # fmt: skip


def run_step(ctx: Context, step: Step, timeout: float) -> StepResult:
    """Run one step, catching its failure: the result row, never an exception."""
    ctx.log = ctx.out / "logs" / (re.sub(r"[^\w.-]+", "-", f"{step.group}-{step.name}").strip("-") + ".log")
    ctx.log.unlink(missing_ok=True)
    started = time.perf_counter()
    try:
        outcome = step.run(timeout)
    except Skip as exc:
        return StepResult(step.group, step.name, SKIPPED, time.perf_counter() - started, str(exc))
    except Exception as exc:  # noqa: BLE001  (a broken path is a failed row; the others still run)
        reason = str(exc) if isinstance(exc, CommandFailed) else f"{type(exc).__name__}: {exc}".splitlines()[0]
        return StepResult(step.group, step.name, FAILED, time.perf_counter() - started, reason)
    return StepResult(step.group, step.name, OK, time.perf_counter() - started, "", outcome.headline, outcome.rows)


def environment(smoke: bool) -> dict[str, Any]:
    """The GPU (name, driver), CUDA and torch versions, or 'cpu' with --smoke; plus facebench's provenance."""
    from facebench.provenance import environment as provenance

    env = {"gpu": "cpu", "driver": None, "cuda": torch.version.cuda, "torch": torch.__version__}
    if not smoke:
        env |= {"gpu": torch.cuda.get_device_name(0), "driver": nvidia_driver()}
    return {**env, **provenance(), "command": " ".join([Path(sys.executable).name, *sys.argv])}


def nvidia_driver() -> str | None:
    """The NVIDIA driver version per NVML, or None without NVML."""
    try:
        import pynvml

        pynvml.nvmlInit()
        try:
            return pynvml.nvmlSystemGetDriverVersion()
        finally:
            pynvml.nvmlShutdown()
    except Exception:  # noqa: BLE001  (no library or no driver: not recorded)
        return None


DETAILS: dict[str, tuple[str, tuple[str, ...]]] = {
    "table2": ("Table 2 (facebench profile)", (
        "model", "dtype", "batch", "channels_last", "params_m", "gmacs", "latency_ms_mean", "latency_ms_std",
        "latency_ms_p50", "latency_ms_p95", "throughput_ips", "mem_alloc_peak_mb", "mem_reserved_peak_mb",
        "mem_process_mb", "mem_process_source", "mem_rss_peak_growth_mb")),
    "train": ("Training with AMP: engine vs bare loop; DDP", (
        "model", "batch", "amp", "engine_ips", "bare_ips", "ratio", "target", "engine_peak_mb", "bare_peak_mb",
        "peak_memory", "device", "backend", "world_size", "steps", "samples_per_s")),
    "distill": ("Distillation through the engine", (
        "teacher", "student", "method", "batch", "classes", "samples_per_s", "vs_none", "peak_mb", "peak_memory")),
    "paper": ("bench --preset paper: hours from the measured rates (paper_plan.md has the commands)", (
        "plan_step", "title", "samples_per_s", "gpu_hours")),
    "video": ("Video (profile --video; plain per-face loop of video_fps.py)", (
        "model", "batch_frames", "frames", "faces_per_frame", "decode_ms_mean", "detect_ms_mean", "align_ms_mean",
        "embed_ms_mean", "total_ms_mean", "fps", "plain_fps", "vs_plain", "faces", "cpu_ms_per_frame")),
    "onnx": ("Exported MobileFaceNet", (
        "model", "dtype", "precision", "size_mb", "latency_ms_mean", "latency_ms_p50", "vs_torch",
        "mem_alloc_peak_mb", "mem_process_mb")),
}  # fmt: skip


def write_results(ctx: Context, env: dict[str, Any], wall_s: float) -> None:
    """results.json, results.csv (a line per figure row) and summary.md, each atomically."""
    import pandas as pd

    settings = {"mode": "smoke" if ctx.smoke else "gpu", "wall_s": wall_s, "sizes": asdict(ctx.sizes)}
    write_json_atomic(ctx.out / "results.json", {"environment": env, "settings": settings,
                                                 "steps": [asdict(r) for r in ctx.results]})  # fmt: skip
    machine = {key: env[key] for key in ("gpu", "driver", "cuda", "torch")}
    lines = [{**machine, "group": r.group, "name": r.name, "status": r.status, "seconds": r.seconds,
              "reason": r.reason, **row} for r in ctx.results for row in (r.rows or [{}])]  # fmt: skip
    with atomic_path(ctx.out / "results.csv") as tmp:
        pd.DataFrame(lines).to_csv(tmp, index=False)
    write_text_atomic(ctx.out / "summary.md", summary_markdown(ctx, env, wall_s))


def summary_markdown(ctx: Context, env: dict[str, Any], wall_s: float) -> str:
    from facebench.tables import markdown_table

    mode = "smoke (CPU, tiny sizes: checks the script, measures nothing)" if ctx.smoke else "GPU"
    steps = [{"group": r.group, "step": r.name, "status": r.status, "s": round(r.seconds, 1),
              "result": r.headline or r.reason} for r in ctx.results]  # fmt: skip
    header = (f"# GPU acceptance run (benchmarks/gpu_acceptance.py)\n\n- mode: {mode}\n- GPU: {env['gpu']}, driver "
              f"{env['driver']}, CUDA {env['cuda']}, torch {env['torch']}\n- CPU: {env['cpu']}\n- commit: "
              f"{env['git_commit']}, {env['time_utc']}\n- wall time: {wall_s:.0f} s "
              f"(budget {ctx.sizes.budget_s:.0f} s)")  # fmt: skip
    parts = [f"{header}\n\n## Steps\n\n{markdown_table(steps)}\n"]
    for group, (title, columns) in DETAILS.items():
        kinds: dict[frozenset[str], list[dict[str, Any]]] = {}  # rows of one kind have the same fields
        for row in ctx.rows(group):
            kinds.setdefault(frozenset(row), []).append(row)
        tables = [markdown_table([{c: row[c] for c in columns if c in fields} for row in rows])
                  for fields, rows in kinds.items()]  # fmt: skip
        if tables:
            parts.append(f"\n## {title}\n\n" + "\n\n".join(tables) + "\n")
    return "".join(parts)


def print_summary(ctx: Context, env: dict[str, Any], wall_s: float) -> None:
    """One screen: the environment, a line per step, the counts."""
    width = min(shutil.get_terminal_size((140, 40)).columns, 200)
    print(f"\nGPU acceptance ({'smoke' if ctx.smoke else 'gpu'}): {env['gpu']}, driver {env['driver']}, "
          f"CUDA {env['cuda']}, torch {env['torch']}; {wall_s:.0f} s of {ctx.sizes.budget_s:.0f} s")  # fmt: skip
    for r in ctx.results:
        print(f"{r.group:<8} {r.name:<34} {r.status:<7} {r.seconds:6.1f} s  {r.headline or r.reason}"[:width])
    counts = {status: sum(r.status == status for r in ctx.results) for status in (OK, FAILED, SKIPPED)}
    print(", ".join(f"{n} {status}" for status, n in counts.items()) + f"; details in {ctx.out / 'summary.md'}")


def run(smoke: bool, out: Path) -> None:
    """Every step within the budget, results rewritten after each, the summary printed at the end."""
    sizes = SMOKE if smoke else GPU
    env = environment(smoke)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="gpu-acceptance-") as scratch:
        ctx = Context(sizes, smoke, out, Path(scratch))
        steps = plan_run(ctx)
        for k, step in enumerate(steps, start=1):
            left = sizes.budget_s - (time.monotonic() - started)
            if left < MIN_STEP_S:
                result = StepResult(step.group, step.name, SKIPPED, 0.0, f"the run's {sizes.budget_s:.0f} s are spent")
            else:
                result = run_step(ctx, step, min(sizes.limits[step.group], left))
            ctx.results.append(result)
            print(f"[{k}/{len(steps)}] {step.group} {step.name}: {result.status} in {result.seconds:.1f} s "
                  f"{result.headline or result.reason}", flush=True)  # fmt: skip
            write_results(ctx, env, time.monotonic() - started)
    print_summary(ctx, env, time.monotonic() - started)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--out", type=Path, default=Path("reports/gpu"), help="folder for the results")
    parser.add_argument("--smoke", action="store_true", help="the same steps on the CPU with tiny sizes (< 1 min)")
    parser.add_argument("--step", choices=HELPERS, help=argparse.SUPPRESS)  # a helper, run by the step itself
    parser.add_argument("--params", default="{}", help=argparse.SUPPRESS)
    parser.add_argument("--result", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    sizes = SMOKE if args.smoke else GPU
    if args.step:
        if sizes.threads:
            torch.set_num_threads(sizes.threads)
        write_json_atomic(args.result, HELPERS[args.step](sizes, **json.loads(args.params)))
        return
    if not args.smoke and not torch.cuda.is_available():
        parser.error("no CUDA GPU is visible: run this on the GPU machine, or add --smoke")
    run(args.smoke, args.out.resolve())


if __name__ == "__main__":
    main()
