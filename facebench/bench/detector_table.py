"""``bench --preset detectors``: each face detector's cost on the LFW photos and what its crops do to verification.

Steps, per detector (mtcnn, yunet, retinaface, haar): a ``DetectStep`` detects every LFW photo once
at batch 1 and 1 thread (what ``facebench align`` runs per worker), timing the detector call only,
and warps the main face (``detectors.main_face``) onto the ArcFace template as ``align_face`` does
(centre-crop fallback, counted, when no face is found); for YuNet and RetinaFace once per landmark
correction (facebench.data.landmarks: ``none`` = the detector's own points, ``linear`` = what
``--detector yunet|retinaface`` applies), so the table shows the before and after. It then times
200 of the photos with 2 threads and the first 60 frames of the street clip with 2 threads. Then
the pretrained MobileFaceNet verifies each crop set (``VerifyStep``: all 6000 pairs, 10 folds, and
every pair of the 7,701 crops as ``lfw-all``), and the report step writes the detector table
(``facebench.report.detectors``).

Each DetectStep folder ``detect-<detector>/`` holds ``detect.json`` (settings, machine, timings)
and ``detect.npz`` (per photo: ms, faces found, the main face's raw five points); each crop set
``<detector>[-<correction>]/`` holds ``crops/`` (JPEG q95, LFW's layout) and the verification.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from facebench.bench.steps import CROPS, DetectStep, ReportStep, Step, VerifyStep
from facebench.errors import FacebenchError


@dataclass(frozen=True)
class DetectorPreset:
    """Everything a detector bench depends on."""

    name: str
    description: str
    detectors: tuple[str, ...]
    corrections: tuple[str, ...]  # landmark corrections tried on the detectors that have one
    lfw: str  # folder of LFW photos with pairs.txt
    clip: str  # the street clip, timed per frame
    model: str  # the embedder that verifies each crop set
    weights: str
    timing_images: int  # photos re-timed with timing_threads
    timing_threads: int
    warmup: int  # detector calls before timing
    clip_frames: int
    verify_batch_size: int
    all_pairs: str  # name of the all-pairs set over each crop set
    expected: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


DETECTORS = DetectorPreset(
    name="detectors",
    description="mtcnn, yunet, retinaface and haar on the LFW photos: faces found, ms per image and clip frame, and "
    "the pretrained MobileFaceNet on each detector's crops (6000 pairs, every pair of the 7,701 crops)",
    detectors=("mtcnn", "yunet", "retinaface", "haar"),
    corrections=("none", "linear"),
    lfw="../shared/data/lfw",
    clip="../shared/data/videos/facenet_pytorch_video.mp4",
    model="mfn128",
    weights="../shared/models/mobilefacenet/mobilefacenet.pt",
    timing_images=200,
    timing_threads=2,
    warmup=10,
    clip_frames=60,
    verify_batch_size=64,
    all_pairs="lfw-all",
    expected="about 20 min on 2 CPU cores (17.0 min measured on a 2-core Intel Xeon: detection 10.2 min, Haar half "
    "of it; six crop sets verified at about 1.1 min each)",
)


def crop_set_names(preset: DetectorPreset, detector: str) -> dict[str, str]:
    """Correction -> crop set folder name: ``<detector>-<correction>`` for each of the preset's corrections where the
    detector has a fitted one, else just ``<detector>`` with its points as detected."""
    from facebench.data.landmarks import LINEAR_112

    if detector not in LINEAR_112:
        return {"none": detector}
    return {kind: f"{detector}-{kind}" for kind in preset.corrections}


def plan_detector_steps(preset: DetectorPreset, out: Path, report_dir: Path) -> list[Step]:
    """Every step of the detector bench, runs under ``out``, the report in ``report_dir``."""
    detects: list[Step] = []
    verifies: list[Step] = []
    pairs = {"lfw": str(Path(preset.lfw) / "pairs.txt")}
    for order, detector in enumerate(preset.detectors):
        crop_sets = {kind: out / name for kind, name in crop_set_names(preset, detector).items()}
        detects.append(DetectStep(f"detect LFW ({detector})", out / f"detect-{detector}", detector, preset.lfw,
                                  preset.clip, crop_sets, preset.timing_images, preset.timing_threads, preset.warmup,
                                  preset.clip_frames, order))  # fmt: skip
        for kind, folder in crop_sets.items():
            crops = str(folder / CROPS)
            what = f" (correction {kind})" if folder.name != detector else ""
            verifies.append(VerifyStep(f"verify {preset.model} on {detector} crops{what}", folder, pairs, None, False,
                                       preset.verify_batch_size, "cpu", "none", preset.model, preset.weights,
                                       images_root=crops, folders={preset.all_pairs: crops}))  # fmt: skip
    return [*detects, *verifies, ReportStep("detector report", report_dir, out)]


def check_detector_inputs(preset: DetectorPreset) -> None:
    """Refuse, before the first step, what would fail later: missing photos, pairs, clip or weights."""
    for path, what in ((preset.lfw, "LFW folder"), (Path(preset.lfw) / "pairs.txt", "LFW pairs"),
                       (preset.clip, "street clip"), (preset.weights, "pretrained weights")):  # fmt: skip
        if not Path(path).exists():
            raise FacebenchError(f"{path}: no such file or folder ({what} of --preset {preset.name})")
    from facebench.data.detectors import build_detector

    for detector in preset.detectors:
        build_detector(detector)  # weights fetched and checked (SHA-256) before the first step
