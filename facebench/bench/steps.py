"""The bench's steps: each knows its output folder, whether that folder is complete, how to
produce it through the library (no subprocesses), and the CLI command that does the same.

Completeness, so a bench can be stopped and started again:
- training (train / distill): ``checkpoint.pt`` holds the last step of the run, and
  ``config.json`` was written with the planned settings (other settings: refused, since
  the folder would no longer be what the plan says); a checkpoint short of the last step
  is resumed exactly;
- verification: ``verify.json`` scores that run's final ``checkpoint.pt`` (not ``best.pt``:
  it was chosen on the very pairs reported), is newer than it, and covers the planned sets
  and folds;
- profile: ``profile.json`` holds the planned models measured with the planned settings;
- align: every source image is listed as aligned in ``align_report.csv`` (align resumes);
- export: the file and its sidecar exist, and the sidecar records the planned source
  (its SHA-256), format, precision and quantisation;
- detect: ``detect.json`` and ``detect.npz`` exist and the JSON records the planned settings
  (detection is redone whole: about 1-6 min per detector);
- report: always rebuilt (seconds).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from rich.console import Console

from facebench.errors import FacebenchError
from facebench.runfolder import ABSENT, CHECKPOINT, COMPLETE, CONFIG, PROFILE, VERIFY, RunFolder, file_sha256

DONE, PARTIAL, TODO = "done", "partial", "to do"
CROPS = "crops"  # a detector bench's crop set keeps its crops here, beside its verification
WHERE_IT_RUNS = ("device", "workers", "threads")  # may differ between a run and its resumption
FINAL_STAGE = "final"  # verify.json meta "stage" written by the bench's verification


def _option(name: str) -> str:
    return "--" + name.replace("_", "-")


def cli_options(settings: dict[str, Any], defaults: dict[str, Any]) -> list[str]:
    """``--name value`` for every setting that differs from ``defaults`` (train's option spelling)."""
    words: list[str] = []
    for name, value in settings.items():
        if name in defaults and value == defaults[name]:
            continue
        if isinstance(value, bool):
            words.append(_option(name) if value else "--no-" + name.replace("_", "-"))
        elif isinstance(value, dict):
            for key, item in value.items():
                words += [_option(name), f"{key}={item}"]
        elif value is not None:
            words += [_option(name), str(value)]
    return words


@dataclass
class TrainingStep:
    """``facebench train`` (kind "train") or ``facebench distill`` (kind "distill") into ``folder``."""

    title: str
    kind: str
    folder: Path
    settings: dict[str, Any]  # config fields; distill: TrainConfig's plus teacher and method

    def state(self) -> str:
        folder = RunFolder(self.folder)
        state = folder.training_state()
        if state == ABSENT:
            return TODO
        saved = folder.read_config()
        differ = [k for k, v in self.settings.items()
                  if k not in WHERE_IT_RUNS and k != "out" and saved["config"].get(k) != v]  # fmt: skip
        if differ:
            key = differ[0]
            raise FacebenchError(
                f"{folder / CONFIG}: made with {key}={saved['config'].get(key)!r}, the plan says "
                f"{self.settings[key]!r}; move that folder away or bench into another --out"
            )
        teacher = Path(self.settings.get("teacher", ""))
        if self.kind == "distill" and teacher.is_file():  # the teacher file the plan names, as it is now
            folder.check_teacher(file_sha256(teacher), f"{teacher} now (the teacher was trained again)",
                                 "move that folder away so the student is distilled again")
        return DONE if state == COMPLETE else PARTIAL

    def run(self, console: Console, resume: bool) -> None:
        if self.kind == "train":
            from facebench.train.config import TrainConfig
            from facebench.train.run import train

            train(TrainConfig(**self.settings), resume=resume, console=console)
        else:
            from facebench.distill.config import DistillConfig
            from facebench.distill.run import distill

            distill(DistillConfig(**self.settings), resume=resume, console=console)

    def command(self) -> str:
        from facebench.train.config import TrainConfig

        settings = dict(self.settings)
        if self.kind == "train":
            return " ".join(["facebench train", *cli_options(settings, vars(TrainConfig()))])
        head = ["facebench distill", "--teacher", settings.pop("teacher"), "--student", settings.pop("model"),
                "--method", settings.pop("method")]
        return " ".join(head + cli_options(settings, vars(TrainConfig())))


@dataclass
class VerifyStep:
    """``facebench verify`` of a run's final checkpoint.pt (or of a model spec: an external pretrained model, a
    zoo name with ``weights``, a deployed file), into the folder."""

    title: str
    folder: Path
    sets: dict[str, str]
    folds: int | None
    flip: bool
    batch_size: int
    device: str
    align: str
    spec: str | None = None  # a model spec verified as it comes (dlib, mfn128 + weights, a .onnx file)
    weights: str | None = None  # --weights for a zoo-name spec
    precision: str | None = None  # --precision (None: verify's default)
    images_root: str | None = None  # --images-root (e.g. faces aligned by an AlignStep)
    folders: dict[str, str] = field(default_factory=dict)  # --folders NAME=DIR: all-pairs sets
    degrade: tuple[str, ...] = ()  # --degrade recipes, canonical (facebench.data.degrade)

    @property
    def checkpoint(self) -> Path:
        return self.folder / CHECKPOINT

    @property
    def model(self) -> str:
        """What ``--model`` gets."""
        return self.spec or str(self.checkpoint)

    def state(self) -> str:
        folder = RunFolder(self.folder)
        path = folder / VERIFY
        if not path.is_file() or (self.spec is None and not self.checkpoint.is_file()):
            return TODO
        verify = folder.read_verify()
        rows, meta = verify["rows"], verify["meta"]
        if self.spec is not None:
            model_file = Path(self.spec)
            same_model = (meta.get("spec", meta.get("model_name")) == self.spec
                          and (self.weights is None or meta.get("model_source") == self.weights)
                          and (self.precision is None or meta.get("precision") == self.precision)
                          and (not model_file.is_file() or path.stat().st_mtime >= model_file.stat().st_mtime))
        else:
            same_model = (meta.get("model_source") == str(self.checkpoint)
                          and path.stat().st_mtime >= self.checkpoint.stat().st_mtime)  # fmt: skip
        complete = (
            same_model
            and meta.get("stage") == FINAL_STAGE
            and meta.get("folds") == (self.folds or "all")
            and [r["set"] for r in rows] == self.row_names()
        )
        return DONE if complete else TODO

    def row_names(self) -> list[str]:
        """The verify.json rows' set names this step writes: each pairs set and its degraded copies, then each
        folder set and its degraded copies."""
        from facebench.data.degrade import degraded_name, parse_degradation

        recipes = [None, *(parse_degradation(spec) for spec in self.degrade)]
        return [degraded_name(name, recipe) for name in [*self.sets, *self.folders] for recipe in recipes]

    def run(self, console: Console, resume: bool) -> None:
        from facebench.data.degrade import parse_degradation
        from facebench.data.folder_set import load_folder_set
        from facebench.device import resolve_device
        from facebench.eval.folder_verify import folder_summary
        from facebench.eval.verify import load_pair_sets, run_settings, verify_sets, write_outputs
        from facebench.modelspec import ModelOptions, resolve_model

        device = resolve_device(self.device)
        root = Path(self.images_root) if self.images_root else None
        sets = load_pair_sets(self.sets, self.folds, "--folds", images_root=root)
        folder_sets = [load_folder_set(name, path) for name, path in self.folders.items()]
        degradations = [parse_degradation(spec) for spec in self.degrade]
        weights = Path(self.weights) if self.weights else None
        resolved = resolve_model(self.model, ModelOptions(weights=weights))
        scored, scored_folders = verify_sets(resolved, sets, folder_sets, align=self.align, device=device,
                                             batch_size=self.batch_size, flip=self.flip, precision=self.precision,
                                             degradations=degradations)  # fmt: skip
        settings = run_settings(resolved, device, self.batch_size, self.flip, self.align, self.folds, self.precision)
        extra = {"stage": FINAL_STAGE} | ({"spec": self.spec} if self.spec is not None else {})
        write_outputs(self.folder, scored, resolved, settings, extra_meta=extra, folders=scored_folders)
        for item in scored:
            r = item.result
            console.print(f"{item.name}: accuracy {r.accuracy:.4f} +- {r.accuracy_std:.4f}, {r.n_pairs} pairs",
                          highlight=False)
        for item in scored_folders:
            console.print(f"{item.name}: {folder_summary(item)}", highlight=False, soft_wrap=True)

    def command(self) -> str:
        """The equivalent ``facebench verify``, shell-quoted."""
        words = ["--model", self.model]
        for name, path in self.sets.items():
            words += ["--pairs", f"{name}={path}"]
        for name, path in self.folders.items():
            words += ["--folders", f"{name}={path}"]
        for spec in self.degrade:
            words += ["--degrade", spec]
        words += ["--weights", self.weights] if self.weights else []
        words += ["--images-root", self.images_root] if self.images_root else []
        words += ["--flip" if self.flip else "--no-flip", "--batch-size", str(self.batch_size), "--device",
                  self.device, "--align", self.align]
        words += ["--precision", self.precision] if self.precision else []
        words += ["--folds", str(self.folds)] if self.folds else []
        return "facebench verify " + shlex.join([*words, "--out", str(self.folder)])


@dataclass
class ProfileStep:
    """``facebench profile`` of the study's architectures into ``folder``/profile.{csv,md,json}."""

    title: str
    folder: Path
    models: list[str]
    device: str
    batch_size: int
    threads: int | None
    warmup: int
    iters: int
    precision: str = "fp32"
    weights: str | None = None  # --weights, for every model (zoo names)

    def state(self) -> str:
        folder = RunFolder(self.folder)
        if not folder.has(PROFILE):
            return TODO
        data = folder.read_profile()
        meta = data["meta"]
        same = ([r["model"] for r in data["rows"]] == self.models
                and (meta.get("batch_size"), meta.get("warmup"), meta.get("iters"), meta.get("dtype"))
                == (self.batch_size, self.warmup, self.iters, self.precision))  # fmt: skip
        return DONE if same else TODO

    def run(self, console: Console, resume: bool) -> None:
        from facebench.device import resolve_device
        from facebench.modelspec import ModelOptions
        from facebench.profiling.profile import profile_models, write_profile
        from facebench.profiling.runtime import RuntimeConfig

        config = RuntimeConfig(resolve_device(self.device), self.precision, self.batch_size, self.warmup, self.iters,
                               self.threads)
        options = ModelOptions(weights=Path(self.weights) if self.weights else None)
        rows = profile_models(self.models, config, options=options)
        write_profile(rows, config, self.folder, title="facebench profile (bench)")
        for row in rows:
            gflops = "GFLOPs n/a" if row["gflops"] is None else f"{row['gflops']:.3f} GFLOPs"
            console.print(f"{row['model']}: {row['latency_ms_mean']:.2f} +- {row['latency_ms_std']:.2f} ms, {gflops}",
                          highlight=False)

    def command(self) -> str:
        threads = ["--threads", str(self.threads)] if self.threads else []
        threads += ["--weights", self.weights] if self.weights else []
        return " ".join(["facebench profile", "--models", ",".join(self.models), "--device", self.device,
                         "--batch-size", str(self.batch_size), *threads, "--warmup", str(self.warmup),
                         "--iters", str(self.iters), "--precision", self.precision, "--out", str(self.folder)])


@dataclass
class AlignStep:
    """``facebench align`` of a folder of photos onto the ArcFace crop (e.g. LFW with MTCNN), resumable."""

    title: str
    folder: Path  # the aligned copy
    src: str
    detector: str
    workers: int

    def state(self) -> str:
        from facebench.data.align_folder import REPORT_NAME, list_source_images, read_report

        report = self.folder / REPORT_NAME
        if not report.is_file():
            return TODO
        rows = read_report(report)
        files = list_source_images(Path(self.src)) if Path(self.src).is_dir() else []
        done = bool(files) and all(rows.get(f, {}).get("status") == "aligned" for f in files)
        return DONE if done else PARTIAL

    def run(self, console: Console, resume: bool) -> None:
        from facebench.data.align_folder import align_folder

        summary = align_folder(self.src, self.folder, detector=self.detector, workers=self.workers)
        console.print(f"{summary.images} images: {summary.by_detector} aligned on a detected face, "
                      f"{summary.fallback} centre-cropped (no face)", highlight=False)

    def command(self) -> str:
        return shlex.join(["facebench", "align", "--src", self.src, "--dst", str(self.folder), "--detector",
                           self.detector, "--workers", str(self.workers)])


@dataclass
class ExportStep:
    """``facebench export`` of a zoo model with weights to ``folder``/``file`` (ONNX or OpenVINO IR)."""

    title: str
    folder: Path
    file: str  # its name in the folder, e.g. model.onnx
    model: str
    weights: str
    format: str
    precision: str = "fp32"
    quantize: str = "none"
    calib: str | None = None  # folder of aligned training faces
    calib_images: int = 300
    check: str | None = None  # folder of aligned faces for the self-check
    align: str = "none"

    @property
    def out(self) -> Path:
        return self.folder / self.file

    def state(self) -> str:
        from facebench.deploy import read_sidecar

        sidecar = read_sidecar(self.out) if self.out.is_file() else None
        if sidecar is None:
            return TODO
        quantization = sidecar.get("quantization") or {}
        same = (sidecar["format"], sidecar["source"].get("sha256"), quantization.get("method", "none")) == (
            self.format, file_sha256(Path(self.weights)), self.quantize)
        same = same and sidecar["precision"] == ("int8" if self.quantize != "none" else self.precision)
        return DONE if same else TODO

    def run(self, console: Console, resume: bool) -> None:
        from facebench.deploy.export import CHECK_IMAGES, ExportRequest, export_model, sample_images
        from facebench.modelspec import model_with_weights

        weights = Path(self.weights)
        request = ExportRequest(
            model_with_weights(self.model, weights), self.out,
            {"spec": self.model, "model": self.model, "file": self.weights, "sha256": file_sha256(weights),
             "untrained": False},
            self.format, self.precision, self.quantize, align=self.align,
            calib=sample_images(Path(self.calib), self.calib_images, "--calib") if self.calib else [],
            check=sample_images(Path(self.check), CHECK_IMAGES, "--check") if self.check else [],
        )  # fmt: skip
        check = export_model(request).check
        console.print(f"self-check ({check['images']}): max abs difference {check['max_abs_diff']:.2e}, min cosine "
                      f"{check['min_cosine']:.6f}", highlight=False)  # fmt: skip

    def command(self) -> str:
        words = ["--model", self.model, "--weights", self.weights, "--format", self.format]
        words += ["--precision", self.precision] if self.precision != "fp32" else []
        words += ["--quantize", self.quantize] if self.quantize != "none" else []
        if self.calib:
            words += ["--calib", self.calib, "--calib-images", str(self.calib_images)]
        words += ["--check", self.check] if self.check else []
        return "facebench export " + shlex.join([*words, "--align", self.align, "--out", str(self.out)])


@dataclass
class DetectStep:
    """Detect every photo of ``lfw`` with one detector (1 thread), re-time a sample and a clip with more threads,
    and write one crop set per landmark correction (``facebench.profiling.detector_timing``); the detector
    bench's first steps. Complete when detect.json records the planned settings."""

    title: str
    folder: Path  # detect.json and detect.npz
    detector: str
    lfw: str
    clip: str
    crop_sets: dict[str, Path]  # correction -> the crop set's folder (crops into its crops/)
    timing_images: int
    timing_threads: int
    warmup: int
    clip_frames: int
    order: int  # the detector's row in the table

    def settings(self) -> dict[str, Any]:
        return {"detector": self.detector, "lfw": self.lfw, "clip": self.clip, "order": self.order,
                "crop_sets": {kind: str(path) for kind, path in self.crop_sets.items()},
                "timing_images": self.timing_images, "timing_threads": self.timing_threads, "warmup": self.warmup,
                "clip_frames": self.clip_frames}  # fmt: skip

    def state(self) -> str:
        from facebench.fileio import read_json
        from facebench.report.detectors import DETECT_JSON, DETECT_NPZ

        path = self.folder / DETECT_JSON
        if not path.is_file() or not (self.folder / DETECT_NPZ).is_file():
            return TODO
        return DONE if read_json(path, {"settings": dict})["settings"] == self.settings() else TODO

    def run(self, console: Console, resume: bool) -> None:
        import os
        import time

        import cv2
        import numpy as np
        import torch
        from rich.progress import Progress

        from facebench.data.align_folder import list_source_images
        from facebench.device import acceleration_flags, cpu_name
        from facebench.fileio import atomic_path, write_json_atomic
        from facebench.profiling.detector_timing import detect_photos, time_clip, time_detector
        from facebench.profiling.runtime import machine_state
        from facebench.report.detectors import DETECT_JSON, DETECT_NPZ

        files, root = list_source_images(Path(self.lfw)), Path(self.lfw)
        for crop_set in self.crop_sets.values():  # its verification scored the crops about to be replaced
            (crop_set / VERIFY).unlink(missing_ok=True)
        before, started = machine_state(), time.perf_counter()
        with Progress(console=console, transient=True) as progress:
            task = progress.add_task(f"detect ({self.detector}, 1 thread)", total=len(files))
            photos = detect_photos(self.detector, root, files, {k: v / CROPS for k, v in self.crop_sets.items()},
                                   lambda: progress.advance(task))  # fmt: skip
        sample = files[:: max(1, len(files) // self.timing_images)][: self.timing_images]
        timed = time_detector(self.detector, [root / f for f in sample], self.timing_threads, self.warmup)
        clip_ms, clip_faces = time_clip(self.detector, Path(self.clip), self.clip_frames, self.timing_threads)
        self.folder.mkdir(parents=True, exist_ok=True)
        with atomic_path(self.folder / DETECT_NPZ) as tmp, tmp.open("wb") as handle:
            np.savez(handle, files=np.array(files), ms_timed=timed, clip_ms=clip_ms, **photos)
        write_json_atomic(self.folder / DETECT_JSON, {
            "settings": self.settings(), "images": len(files), "faces_found": int((photos["faces"] > 0).sum()),
            "clip_faces_per_frame": clip_faces, "wall_s": round(time.perf_counter() - started, 1),
            "machine": {"cpu": cpu_name(), "flags": acceleration_flags(), "cores": os.cpu_count(),
                        "torch": torch.__version__, "opencv": cv2.__version__, "before": before,
                        "after": machine_state()},
        })  # fmt: skip
        console.print(f"{self.detector}: a face in {int((photos['faces'] > 0).sum())} of {len(files)} photos, "
                      f"{photos['ms'].mean():.1f} ms per photo (1 thread, mean), {np.median(timed):.1f} ms "
                      f"({self.timing_threads} threads, p50), {np.median(clip_ms):.1f} ms per clip frame (p50)",
                      highlight=False)  # fmt: skip

    def command(self) -> str:
        sets = ", ".join(str(path / CROPS) for path in self.crop_sets.values())
        return (f"(no CLI equivalent: detect every photo of {self.lfw} with {self.detector} at 1 thread, re-time "
                f"{self.timing_images} of them and {self.clip_frames} frames of {self.clip} at {self.timing_threads} "
                f"threads; crops into {sets})")


@dataclass
class ReportStep:
    """``facebench report`` over the bench's runs folder."""

    title: str
    folder: Path  # the report's output folder
    runs: Path
    written: list[Path] = field(default_factory=list)

    def state(self) -> str:
        return TODO  # cheap: always rebuilt from whatever the runs folder holds now

    def run(self, console: Console, resume: bool) -> None:
        from facebench.report.build import build_any_report

        report = build_any_report(self.runs, self.folder)
        self.written = report.paths
        for note in report.notes:
            console.print(f"[yellow]note:[/] {note}", highlight=False, soft_wrap=True)

    def command(self) -> str:
        return f"facebench report --runs {self.runs} --out {self.folder}"


Step = TrainingStep | VerifyStep | ProfileStep | AlignStep | ExportStep | DetectStep | ReportStep

