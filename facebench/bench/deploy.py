"""``bench --preset deploy``: a pretrained model and the variants people ship, each with its accuracy and cost.

Steps: align LFW and the calibration set with MTCNN once -> for each variant of the
pretrained MobileFaceNet (torch fp32, torch bf16 where the CPU has bf16 units, ONNX
Runtime fp32 and int8, OpenVINO fp32 and int8) export it where it is a file, verify it on
all 6000 LFW pairs, profile it at batch 1 and 64 -> dlib the same way (its own alignment)
-> the zoo's untrained mobilenet and r18, latency only -> the deploy report
(``facebench.report.deploy``). Every variant folder holds ``verify.json`` and
``profile-b1/``, ``profile-b64/``; ``variant.json`` (``facebench.report.deploy``) names what it is.

Measured on a 2-core Intel Xeon (AVX-512 VNNI, AMX; reports/deploy/summary.md): 21.8 min in all,
of which verification 15.7 min (dlib 7.4 min from an empty embedding cache and ONNX Runtime fp32
2.6 min, both under other jobs' load; torch fp32 0.9 min), alignment 1.9 min, export 1.2 min,
profiling 3 min. That was before each verification also scored every pair of the aligned photos
(``lfw-all``) and both sets with 24-px probes (``downscale:24``): one more embedding pass per variant
and a few seconds of all-pairs scoring; measured alone, the fp32 torch verification with both took
13.8 min and the ONNX Runtime int8 one 6.0 min, under three other jobs' load on 2 cores.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from facebench.bench.steps import AlignStep, ExportStep, ProfileStep, ReportStep, Step, VerifyStep
from facebench.errors import FacebenchError
from facebench.fileio import write_json_atomic
from facebench.report.deploy import LATENCY_ONLY, ORIGINAL, REFERENCE, VARIANT_OF_ORIGINAL
from facebench.runfolder import VARIANT


@dataclass(frozen=True)
class Variant:
    """One row of the compression table: how it is made (export), run (runtime, precision) and measured."""

    name: str  # its folder
    title: str
    runtime: str  # torch, onnxruntime, openvino, dlib
    precision: str
    role: str = VARIANT_OF_ORIGINAL  # ORIGINAL (the fp32 torch model the differences refer to), VARIANT, REFERENCE, LATENCY_ONLY
    export: dict[str, str] = field(default_factory=dict)  # ExportStep fields (format, precision, quantize, file)
    spec: str | None = None  # model spec when not exported (zoo name, external name)
    bf16: bool = False  # torch in bf16: only where the CPU has bf16 units


@dataclass(frozen=True)
class DeployPreset:
    """Everything a deploy bench depends on."""

    name: str
    description: str
    model: str  # zoo architecture of the pretrained weights
    weights: str
    variants: tuple[Variant, ...]
    lfw: str  # folder of LFW photos with pairs.txt
    calib: str  # training photos to calibrate int8 on (never the evaluation pairs)
    calib_images: int
    detector: str
    align_workers: int
    verify_flip: bool
    verify_batch_size: int
    profile_threads: int
    profile_batches: tuple[tuple[int, int, int], ...]  # (batch, warmup, iters)
    expected: str
    all_pairs: str | None = "lfw-all"  # name of the all-pairs set over the aligned LFW photos (None: none)
    degrade: tuple[str, ...] = ("downscale:24",)  # one more row per set with each probe degraded this way

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DEPLOY = DeployPreset(
    name="deploy",
    description="pretrained MobileFaceNet as shipped: torch fp32/bf16, ONNX Runtime fp32/int8, OpenVINO fp32/int8, "
    "beside dlib and untrained mobilenet/r18 (latency); all 6000 LFW pairs",
    model="mfn128",
    weights="../shared/models/mobilefacenet/mobilefacenet.pt",
    variants=(
        Variant("mfn128-torch-fp32", "PyTorch fp32 (eager)", "torch", "fp32", ORIGINAL, spec="mfn128"),
        Variant("mfn128-torch-bf16", "PyTorch bf16 (eager)", "torch", "bf16", spec="mfn128", bf16=True),
        Variant("mfn128-onnx-fp32", "ONNX Runtime fp32", "onnxruntime", "fp32",
                export={"format": "onnx", "file": "model.onnx"}),
        Variant("mfn128-onnx-int8", "ONNX Runtime int8 (static QDQ)", "onnxruntime", "int8",
                export={"format": "onnx", "quantize": "int8", "file": "model.onnx"}),
        Variant("mfn128-openvino-fp32", "OpenVINO fp32 (IR)", "openvino", "fp32",
                export={"format": "openvino", "file": "model.xml"}),
        Variant("mfn128-openvino-int8", "OpenVINO int8 (IR of the QDQ model)", "openvino", "int8",
                export={"format": "openvino", "quantize": "int8", "file": "model.xml"}),
        Variant("dlib", "dlib ResNet (pretrained, its own alignment)", "dlib", "fp32", REFERENCE, spec="dlib"),
        Variant("mobilenet-untrained", "zoo mobilenet (untrained)", "torch", "fp32", LATENCY_ONLY, spec="mobilenet"),
        Variant("r18-untrained", "zoo r18 (untrained)", "torch", "fp32", LATENCY_ONLY, spec="r18"),
    ),
    lfw="../shared/data/lfw",
    calib="../shared/data/celeba",
    calib_images=300,
    detector="mtcnn",
    align_workers=2,
    verify_flip=False,
    verify_batch_size=64,
    profile_threads=2,
    profile_batches=((1, 10, 100), (64, 3, 20)),
    expected="about 30 min on 2 CPU cores (21.8 min measured without lfw-all and the 24-px probes, which add an "
    "embedding pass per variant; dlib 7.4 min from an empty cache)",
)


def cpu_has_bf16() -> bool:
    """True where the CPU has bf16 matrix or vector units (AMX, AVX-512 BF16): torch bf16 is then a real variant."""
    from facebench.device import cpu_flags

    return bool({"amx_bf16", "avx512_bf16"} & cpu_flags())


def planned_variants(preset: DeployPreset) -> list[Variant]:
    """The preset's variants this machine runs (torch bf16 only with bf16 units)."""
    return [v for v in preset.variants if not v.bf16 or cpu_has_bf16()]


def plan_deploy_steps(preset: DeployPreset, out: Path, report_dir: Path) -> list[Step]:
    """Every step of the deploy bench, runs under ``out``, the report in ``report_dir``."""
    aligned_lfw, aligned_calib = out / "aligned" / "lfw", out / "aligned" / "calib"
    steps: list[Step] = [
        AlignStep(f"align LFW ({preset.detector})", aligned_lfw, preset.lfw, preset.detector, preset.align_workers),
        AlignStep(f"align calibration set ({preset.detector})", aligned_calib, preset.calib, preset.detector,
                  preset.align_workers),
    ]  # fmt: skip
    pairs = {"lfw": str(Path(preset.lfw) / "pairs.txt")}
    for variant in planned_variants(preset):
        folder = out / variant.name
        spec, weights, images_root, align = variant.spec, None, str(aligned_lfw), "none"
        if variant.export:
            quantize = variant.export.get("quantize", "none")
            export = ExportStep(
                f"export {variant.title}", folder, variant.export["file"], preset.model, preset.weights,
                variant.export["format"], quantize=quantize, calib=str(aligned_calib) if quantize != "none" else None,
                calib_images=preset.calib_images, check=str(aligned_lfw),
            )  # fmt: skip
            steps.append(export)
            spec = str(export.out)
        elif variant.spec == preset.model:
            weights = preset.weights
        degrade = preset.degrade
        if variant.runtime == "dlib":
            images_root, align = None, "center"  # dlib detects and aligns on the photo itself
            degrade = ()  # its own alignment leaves no crop to degrade
        precision = variant.precision if variant.runtime == "torch" else None
        folders = {preset.all_pairs: images_root or preset.lfw} if preset.all_pairs else {}
        if variant.role != LATENCY_ONLY:
            steps.append(VerifyStep(f"verify {variant.title}", folder, pairs, None, preset.verify_flip,
                                    preset.verify_batch_size, "cpu", align, spec, weights, precision, images_root,
                                    folders, degrade))  # fmt: skip
        for batch, warmup, iters in preset.profile_batches:
            steps.append(ProfileStep(f"profile {variant.title}, batch {batch}", folder / f"profile-b{batch}", [spec],
                                     "cpu", batch, preset.profile_threads, warmup, iters,
                                     precision or "fp32", weights))  # fmt: skip
    steps.append(ReportStep("deploy report", report_dir, out))
    return steps


def write_variant_files(preset: DeployPreset, out: Path) -> None:
    """variant.json in each variant folder: what the report needs to name and order the row."""
    for order, variant in enumerate(planned_variants(preset)):
        write_json_atomic(out / variant.name / VARIANT, {
            "name": variant.name, "title": variant.title, "runtime": variant.runtime, "precision": variant.precision,
            "role": variant.role, "order": order, "model": variant.spec or preset.model, "weights": preset.weights,
        })  # fmt: skip


def check_deploy_inputs(preset: DeployPreset, out: Path) -> None:
    """Refuse, before the first step, what would fail later (missing weights, photos, runtimes); then write
    each variant's variant.json under ``out``."""
    from facebench.deploy.runtimes import require_runtime
    from facebench.external import load_external

    for path, what in ((preset.weights, "pretrained weights"), (preset.lfw, "LFW folder"),
                       (preset.calib, "calibration photos")):  # fmt: skip
        if not Path(path).exists():
            raise FacebenchError(f"{path}: no such file or folder ({what} of --preset {preset.name})")
    if not (Path(preset.lfw) / "pairs.txt").is_file():
        raise FacebenchError(f"{preset.lfw}: holds no pairs.txt")
    for runtime in {v.runtime for v in preset.variants} & {"onnxruntime", "openvino"}:
        require_runtime(runtime)
    for variant in preset.variants:
        if variant.runtime == "dlib":
            load_external("dlib")
    write_variant_files(preset, out)
