"""The detector table from a detector bench's runs (``bench --preset detectors``): detectors.md, .csv, .json.

One row per crop set (a detector, and for YuNet and RetinaFace each landmark correction): faces
found and fallbacks over the LFW photos, ms of the detector call per photo (1 thread over every
photo, ``timing_threads`` over a sample) and per frame of the street clip, how far the crop is from
MTCNN's (where MTCNN's five points land in this crop against MTCNN's own crop, mean template px,
photos where both found a face) and what the embedder gets on the crops: 6000-pair accuracy and
TAR@FAR=1e-3, FNMR at the operating points' FMRs (1e-4, 1e-5) with 95 % identity-bootstrap intervals
and rank-1 on every pair of the crops.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from facebench.device import flags_text
from facebench.errors import FacebenchError
from facebench.fileio import read_json, write_json_atomic, write_text_atomic
from facebench.report.operating import REPORTED_FMRS
from facebench.runfolder import VERIFY
from facebench.tables import markdown_table

DETECT_JSON, DETECT_NPZ = "detect.json", "detect.npz"  # written by facebench.bench.steps.DetectStep
REFERENCE = "mtcnn"  # the detector the pretrained embedders' crops came from


@dataclass
class Detection:
    """One detector's detect-<name>/ folder: its settings, machine, per-photo arrays."""

    folder: Path
    info: dict[str, Any]
    arrays: dict[str, np.ndarray]

    @property
    def name(self) -> str:
        return self.info["settings"]["detector"]


def is_detector_runs(runs_root: Path) -> bool:
    """True when ``runs_root`` holds a detector bench's detect-*/detect.json."""
    return runs_root.is_dir() and any(runs_root.glob(f"*/{DETECT_JSON}"))


def read_detections(runs_root: Path) -> list[Detection]:
    """Every detect-*/ folder under ``runs_root``, in the bench's order."""
    found = []
    for path in runs_root.glob(f"*/{DETECT_JSON}"):
        npz = path.with_name(DETECT_NPZ)
        if not npz.is_file():
            raise FacebenchError(f"{npz}: missing beside {path.name}; run the bench again to redo that detector")
        with np.load(npz) as saved:
            arrays = {key: saved[key] for key in saved.files}
        found.append(Detection(path.parent, read_json(path, {"settings": dict, "machine": dict}), arrays))
    return sorted(found, key=lambda d: d.info["settings"]["order"])


def crop_distance(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean px between the reference's five points warped by ``points``' similarity and by their own."""
    from facebench.data.align import similarity_to_template

    a, b = similarity_to_template(points), similarity_to_template(reference)
    if a is None or b is None:
        return float("nan")
    in_a, in_b = reference @ a[:, :2].T + a[:, 2], reference @ b[:, :2].T + b[:, 2]
    return float(np.linalg.norm(in_a - in_b, axis=1).mean())


def mean_crop_distance(detection: Detection, correction: str, reference: Detection | None) -> float:
    """The crop set's mean distance to MTCNN's crops (0 for MTCNN itself; nan without MTCNN's detections)."""
    from facebench.data.landmarks import correct_landmarks

    if detection.name == REFERENCE:
        return 0.0
    if reference is None or not np.array_equal(reference.arrays["files"], detection.arrays["files"]):
        return float("nan")
    both = (detection.arrays["faces"] > 0) & (reference.arrays["faces"] > 0)
    distances = []
    for points, ref in zip(detection.arrays["landmarks"][both], reference.arrays["landmarks"][both], strict=True):
        distances.append(crop_distance(correct_landmarks(detection.name, points, correction), ref))
    return float(np.nanmean(distances)) if distances else float("nan")


def verification(folder: Path) -> tuple[dict[str, Any] | None, dict[str, Any] | None]:
    """The crop set's 6000-pair row and its all-pairs row (undegraded; None for a row not there or not verified yet)."""
    path = folder / VERIFY
    rows = [r for r in read_json(path, {"rows": list})["rows"] if r.get("degrade") is None] if path.is_file() else []
    pairs = next((r for r in rows if r.get("protocol") != "all-pairs"), None)
    return pairs, next((r for r in rows if r.get("protocol") == "all-pairs"), None)


def _pct(value: float | None) -> float:
    return float("nan") if value is None else 100 * value


def detector_rows(detections: list[Detection]) -> list[dict[str, Any]]:
    """One row per crop set, in the bench's order (see the module docstring for the columns)."""
    from facebench.data.landmarks import LINEAR_112

    reference = next((d for d in detections if d.name == REFERENCE), None)
    rows = []
    for detection in detections:
        arrays, found = detection.arrays, detection.arrays["faces"] > 0
        for correction, folder in detection.info["settings"]["crop_sets"].items():
            pairs, every = verification(Path(folder))
            row = {
                "detector": detection.name, "correction": correction if detection.name in LINEAR_112 else "-",
                "images": int(found.size),
                "faces_found": int(found.sum()), "found_pct": 100 * float(found.mean()),
                "fallbacks": int((~found).sum()),
                "ms_1thread_mean": float(arrays["ms"].mean()), "ms_1thread_p50": float(np.median(arrays["ms"])),
                "ms_timed_mean": float(arrays["ms_timed"].mean()), "ms_timed_p50": float(np.median(arrays["ms_timed"])),
                "clip_ms_p50": float(np.median(arrays["clip_ms"])),
                "clip_faces_per_frame": detection.info["clip_faces_per_frame"],
                "crop_vs_mtcnn_px": mean_crop_distance(detection, correction, reference),
                "accuracy_pct": _pct(pairs and pairs["accuracy"]),
                "accuracy_std_pct": _pct(pairs and pairs["accuracy_std"]),
                "tar_at_far_1e-3_pct": _pct(pairs and pairs["tar_at_far_1e-03"]),
                **{f"fnmr_fmr_{fmr}{end}_pct": _pct(every and every[f"fnmr_fmr_{fmr}{end}"])
                   for fmr in REPORTED_FMRS for end in ("", "_lo", "_hi")},
                "rank1_pct": _pct(every and every["rank1"]),
            }  # fmt: skip
            rows.append(row)
    base = next((r["accuracy_pct"] for r in rows if r["detector"] == REFERENCE), float("nan"))
    for row in rows:
        row["accuracy_vs_mtcnn_pp"] = row["accuracy_pct"] - base
    return rows


COLUMNS = {  # row key -> Markdown header
    "detector": "detector", "correction": "landmark correction", "faces_found": "faces found", "fallbacks": "fallbacks",
    "ms_1thread_mean": "ms/photo 1 thread (mean)", "ms_timed_p50": "ms/photo {threads} threads (p50)",
    "clip_ms_p50": "ms/clip frame {threads} threads (p50)", "crop_vs_mtcnn_px": "crop vs MTCNN (px)",
    "accuracy_pct": "LFW acc %", "accuracy_vs_mtcnn_pp": "vs MTCNN (pp)", "tar_at_far_1e-3_pct": "TAR@FAR=1e-3 %",
    **{f"fnmr_{fmr}": f"FNMR@FMR={fmr} % [95% CI]" for fmr in REPORTED_FMRS}, "rank1_pct": "rank-1 %",
}  # fmt: skip


def markdown(rows: list[dict[str, Any]], detections: list[Detection]) -> str:
    """detectors.md: the conditions, then the table."""
    settings, machine = detections[0].info["settings"], detections[0].info["machine"]
    threads = settings["timing_threads"]
    shown = []
    for row in rows:
        cells = {key: row[key] for key in COLUMNS if key in row}
        for fmr in REPORTED_FMRS:
            value, lo, hi = (row[f"fnmr_fmr_{fmr}{end}_pct"] for end in ("", "_lo", "_hi"))
            cells[f"fnmr_{fmr}"] = "n/a" if np.isnan(value) else f"{value:.2f} [{lo:.2f}, {hi:.2f}]"
        shown.append({COLUMNS[key].format(threads=threads): cells[key] for key in COLUMNS})
    loads = ", ".join(f"{d.name} {d.info['machine']['before']['load_avg_1m']} / "
                      f"{d.info['machine']['after']['load_avg_1m']}" for d in detections)  # fmt: skip
    return "\n".join([
        "# Detectors: cost on LFW and what their crops do to the pretrained MobileFaceNet",
        "",
        f"Made by `facebench bench --preset detectors` on {machine['cpu']} ({machine['cores']} cores; "
        f"{flags_text(machine['flags'])}), torch "
        f"{machine['torch']}, OpenCV {machine['opencv']}; 1-min load average at the start / end of each detector's "
        f"step (the bench's own work included): {loads}. {rows[0]['images']} photos of {settings['lfw']}. "
        "ms = the detector call only, batch 1, fp32: "
        f"1 thread over every photo (what `facebench align` runs per worker), {threads} threads over "
        f"{settings['timing_images']} of them after {settings['warmup']} warm-up calls, and per frame over the first "
        f"{settings['clip_frames']} frames of {Path(settings['clip']).name} (1920x1080; every detector searches "
        "a copy whose longer side is at most 640 px; these two include the shipped landmark correction, about "
        "0.06 ms). Accuracy: `facebench verify --model mfn128 --weights "
        "mobilefacenet.pt --align none --no-flip` on each crop set, 6000 pairs, 10 folds (one pair = 0.017 pp); "
        "FNMR and rank-1: every pair of the crops (`--folders lfw-all=CROPS`), 95 % intervals from a bootstrap over "
        "identities (docs/operating-points.md). Fallback = no face found, the centre crop used. Landmark "
        "correction (facebench.data.landmarks): fitted on CelebA, never on LFW; `linear` is what `--detector "
        "yunet|retinaface` applies, `none` the detector's own points. Crop vs MTCNN = mean distance between where "
        "MTCNN's five points land in this crop and in MTCNN's own crop (112 px template, photos where both found "
        "a face).",
        "",
        markdown_table(shown, floatfmt=".2f"),
        "",
    ])


def build_detector_report(runs_root: Path, out: Path) -> list[Path]:
    """Read a detector bench's runs and write detectors.md, detectors.csv and detectors.json into ``out``."""
    detections = read_detections(runs_root)
    if not detections:
        raise FacebenchError(f"--runs {runs_root}: no detect-*/{DETECT_JSON} under it")
    rows = detector_rows(detections)
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "detectors.md", out / "detectors.csv", out / "detectors.json"]
    buffer = io.StringIO()
    pd.DataFrame(rows).to_csv(buffer, index=False, float_format="%.4g", lineterminator="\n")
    meta = {d.name: {"settings": d.info["settings"], "machine": d.info["machine"], "wall_s": d.info["wall_s"]}
            for d in detections}  # fmt: skip
    write_text_atomic(paths[0], markdown(rows, detections))
    write_text_atomic(paths[1], buffer.getvalue())
    write_json_atomic(paths[2], {"detectors": meta, "rows": rows})
    return paths
