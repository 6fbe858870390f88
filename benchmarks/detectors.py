"""The detector table: each detector's cost on the LFW photos and what its crops do to verification.

    python benchmarks/detectors.py --lfw ../shared/data/lfw \
        --weights ../shared/models/mobilefacenet/mobilefacenet.pt --work /tmp/fb-detectors --out reports/detectors

Per detector (mtcnn, yunet, retinaface, haar), over every LFW photo under --lfw (the 7,701 that
pairs.txt references):

1. detect at batch 1 with 1 torch/OpenCV thread (what ``facebench align`` uses per worker),
   timing the detector call only; then the main face (``detectors.main_face``) is warped onto
   the ArcFace template exactly as ``align_face`` does (centre-crop fallback, counted, when no
   face is found), for YuNet and RetinaFace three times: with no landmark correction, the
   constant one and the linear one (facebench.data.landmarks; fitted on CelebA, never on LFW);
   crops are written as ``facebench align`` writes them (JPEG q95, same layout);
2. re-time 200 of the photos with 2 threads (after 10 warm-up calls);
3. time detection on the street clip (../shared/data/videos/facenet_pytorch_video.mp4, 1920x1080,
   searched at 640 px), 2 threads, per frame;
4. the pretrained MobileFaceNet on each crop set: ``facebench verify --model mfn128 --weights W
   --pairs pairs.txt --images-root CROPS --align none --no-flip`` (6000 pairs, 10 folds), and the
   same with ``--folders lfw-all=CROPS`` (every pair of the crops: FNMR at FMR 1e-4 and 1e-5 with
   identity-bootstrap intervals, rank-1);
5. crop disagreement with MTCNN on LFW (where MTCNN's points land in the detector's crop against
   MTCNN's own crop, mean px over the five points; an evaluation, nothing is fitted on LFW).

Steps already done in --work are reused (detections in <detector>.npz, crops, verify/ and verify-all/), so a
stopped run resumes. Writes detectors.md, detectors.csv and detectors.json in --out.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import torch

from facebench.data.align import _warp, center_crop, similarity_to_template
from facebench.data.align_folder import list_source_images
from facebench.data.detectors import main_face
from facebench.data.images import encode_jpeg
from facebench.data.landmarks import correct_landmarks
from facebench.fileio import write_text_atomic

DETECTORS = ("mtcnn", "yunet", "retinaface", "haar")
CORRECTED = ("yunet", "retinaface")  # detectors with a fitted landmark correction
TIMING_IMAGES = 200
WARMUP = 10
CLIP = Path("../shared/data/videos/facenet_pytorch_video.mp4")
CLIP_FRAMES = 60


def build(name: str):
    """The detector with no landmark correction (corrections are applied here, per variant)."""
    if name == "yunet":
        from facebench.data.yunet import YunetDetector

        return YunetDetector(correction="none")
    if name == "retinaface":
        from facebench.data.retinaface import RetinaFaceDetector

        return RetinaFaceDetector(correction="none")
    from facebench.data.detectors import build_detector

    return build_detector(name)


def set_threads(n: int) -> None:
    torch.set_num_threads(n)
    cv2.setNumThreads(n)


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def variants(name: str) -> list[str]:
    return [f"{name}-{kind}" for kind in ("none", "constant", "linear")] if name in CORRECTED else [name]


def detect_all(name: str, lfw: Path, files: list[str], work: Path) -> dict:
    """Detect every photo once (1 thread), write every variant's crops; cached in work/<name>.npz."""
    cache = work / f"{name}.npz"
    if cache.is_file():
        saved = np.load(cache)
        return {key: saved[key] for key in saved.files}
    set_threads(1)
    detector = build(name)
    detector.detect(read_rgb(lfw / files[0]))
    times, faces_found, landmarks = [], [], np.full((len(files), 5, 2), np.nan, dtype=np.float32)
    for i, file in enumerate(files):
        image = read_rgb(lfw / file)
        start = time.perf_counter()
        faces = detector.detect(image)
        times.append((time.perf_counter() - start) * 1e3)
        faces_found.append(len(faces))
        face = main_face(faces, *image.shape[:2]) if faces else None
        if face is not None:
            landmarks[i] = face.landmarks
        for variant in variants(name):
            kind = variant.rsplit("-", 1)[1] if name in CORRECTED else "none"
            points = None if face is None else correct_landmarks(name, face.landmarks, kind)
            matrix = None if points is None else similarity_to_template(points)
            crop = center_crop(image) if matrix is None else _warp(image, matrix)
            out = work / "crops" / variant / file
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_bytes(encode_jpeg(crop))
        if i % 1000 == 0:
            print(f"{name}: {i}/{len(files)} ({np.mean(times):.1f} ms mean)", flush=True)
    result = {"ms": np.array(times), "faces": np.array(faces_found), "landmarks": landmarks}
    np.savez(cache, **result)
    return result


def time_two_threads(name: str, lfw: Path, files: list[str]) -> np.ndarray:
    set_threads(2)
    detector = build(name)
    sample = files[:: max(1, len(files) // TIMING_IMAGES)][:TIMING_IMAGES]
    images = [read_rgb(lfw / f) for f in sample]
    for image in images[:WARMUP]:
        detector.detect(image)
    times = []
    for image in images:
        start = time.perf_counter()
        detector.detect(image)
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times)


def time_clip(name: str, clip: Path) -> tuple[np.ndarray, float]:
    """ms per frame (2 threads, batch 1) and faces per frame on the street clip's first frames."""
    set_threads(2)
    detector = build(name)
    capture = cv2.VideoCapture(str(clip))
    frames = []
    while len(frames) < CLIP_FRAMES:
        ok, bgr = capture.read()
        if not ok:
            break
        frames.append(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB))
    for frame in frames[:3]:
        detector.detect(frame)
    times, faces = [], []
    for frame in frames:
        start = time.perf_counter()
        faces.append(len(detector.detect(frame)))
        times.append((time.perf_counter() - start) * 1e3)
    return np.array(times), float(np.mean(faces))


def run_verify(out: Path, sets: list[str], args: argparse.Namespace) -> dict:
    """``facebench verify`` of the pretrained MobileFaceNet on ``sets`` into ``out`` (reused when done); its first row."""
    if not (out / "verify.json").is_file():
        command = [str(Path(sys.executable).with_name("facebench")), "verify", "--model", "mfn128", "--weights",
                   str(args.weights), *sets, "--align", "none", "--no-flip", "--device", "cpu", "--out", str(out)]
        print("$", " ".join(command), flush=True)
        subprocess.run(command, check=True, stdout=subprocess.DEVNULL)
    return json.loads((out / "verify.json").read_text())["rows"][0]


def verify(variant: str, args: argparse.Namespace) -> tuple[dict, dict]:
    """The crop set's 6000-pair row and its all-pairs row (every pair of the 7,701 crops, ``verify --folders``)."""
    crops = str(args.work / "crops" / variant)
    pairs = run_verify(args.work / "verify" / variant, ["--pairs", str(args.lfw / "pairs.txt"), "--images-root",
                                                         crops], args)  # fmt: skip
    return pairs, run_verify(args.work / "verify-all" / variant, ["--folders", f"lfw-all={crops}"], args)


def disagreement(points: np.ndarray, reference: np.ndarray) -> float:
    """Mean px between MTCNN's points warped by the detector's similarity and by MTCNN's own."""
    a, b = similarity_to_template(points), similarity_to_template(reference)
    if a is None or b is None:
        return float("nan")
    return float(np.linalg.norm((reference @ a[:, :2].T + a[:, 2]) - (reference @ b[:, :2].T + b[:, 2]), axis=1).mean())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lfw", type=Path, default=Path("../shared/data/lfw"))
    parser.add_argument("--weights", type=Path, default=Path("../shared/models/mobilefacenet/mobilefacenet.pt"))
    parser.add_argument("--work", type=Path, default=Path("/tmp/fb-detectors"))
    parser.add_argument("--out", type=Path, default=Path("reports/detectors"))
    parser.add_argument("--detectors", default=",".join(DETECTORS))
    parser.add_argument("--clip", type=Path, default=CLIP)
    args = parser.parse_args()
    names = args.detectors.split(",")
    files = list_source_images(args.lfw)
    args.work.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    detected = {name: detect_all(name, args.lfw, files, args.work) for name in names}
    two_threads = {name: time_two_threads(name, args.lfw, files) for name in names}
    clip = {name: time_clip(name, args.clip) for name in names} if args.clip.is_file() else {}
    reference = detected.get("mtcnn")
    rows = []
    for name in names:
        found = detected[name]["faces"] > 0
        for variant in variants(name):
            kind = variant.rsplit("-", 1)[1] if name in CORRECTED else "none"
            result, all_pairs = verify(variant, args)
            row = {
                "detector": name, "correction": kind if name in CORRECTED else "-",
                "images": len(files), "faces_found": int(found.sum()), "found_pct": 100 * float(found.mean()),
                "fallbacks": int((~found).sum()),
                "ms_1thread_mean": float(detected[name]["ms"].mean()), "ms_1thread_p50": float(np.median(detected[name]["ms"])),
                "ms_2threads_mean": float(two_threads[name].mean()), "ms_2threads_p50": float(np.median(two_threads[name])),
                "clip_ms_per_frame_2threads": float(np.median(clip[name][0])) if name in clip else float("nan"),
                "clip_faces_per_frame": clip[name][1] if name in clip else float("nan"),
                "accuracy_pct": 100 * result["accuracy"], "accuracy_std_pct": 100 * result["accuracy_std"],
                "tar_at_far_1e-3_pct": 100 * result["tar_at_far_1e-03"], "eer_pct": 100 * result["eer"],
                **{f"{key}_pct": 100 * all_pairs[key] for fmr in ("1e-4", "1e-5")
                   for key in (f"fnmr_fmr_{fmr}", f"fnmr_fmr_{fmr}_lo", f"fnmr_fmr_{fmr}_hi")},
                "rank1_pct": 100 * all_pairs["rank1"],
            }  # fmt: skip
            if reference is not None and name != "mtcnn":
                both = found & (reference["faces"] > 0)
                values = [disagreement(correct_landmarks(name, p, kind) if name in CORRECTED else p, q)
                          for p, q in zip(detected[name]["landmarks"][both], reference["landmarks"][both], strict=True)]  # fmt: skip
                row["crop_disagreement_px"] = float(np.nanmean(values))
            else:
                row["crop_disagreement_px"] = 0.0 if name == "mtcnn" else float("nan")
            rows.append(row)
    table = pd.DataFrame(rows)
    if "mtcnn" in names:
        table["accuracy_vs_mtcnn_pp"] = table["accuracy_pct"] - float(table.loc[table.detector == "mtcnn", "accuracy_pct"].iloc[0])
    args.out.mkdir(parents=True, exist_ok=True)
    table.to_csv(args.out / "detectors.csv", index=False, float_format="%.4g")
    meta = {"cpu": _cpu(), "cores": os.cpu_count(), "torch": torch.__version__, "opencv": cv2.__version__,
            "lfw": str(args.lfw), "embedder": f"mfn128 {args.weights}", "timing_images_2threads": TIMING_IMAGES,
            "clip": str(args.clip), "clip_frames": CLIP_FRAMES, "seconds": round(time.perf_counter() - started, 1),
            "load_average_at_end": os.getloadavg()}  # fmt: skip
    write_text_atomic(args.out / "detectors.json", json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    write_text_atomic(args.out / "detectors.md", markdown(table, meta))
    print(markdown(table, meta))


def markdown(table: pd.DataFrame, meta: dict) -> str:
    shown = table.copy()
    columns = {
        "detector": "detector", "correction": "landmark correction", "faces_found": "faces found",
        "fallbacks": "fallbacks", "ms_1thread_mean": "ms/image 1 thread", "ms_2threads_p50": "ms/image 2 threads (p50)",
        "clip_ms_per_frame_2threads": "ms/frame street clip (p50)", "crop_disagreement_px": "crop vs MTCNN (px)",
        "accuracy_pct": "LFW acc %", "accuracy_vs_mtcnn_pp": "vs MTCNN (pp)", "tar_at_far_1e-3_pct": "TAR@FAR=1e-3 %",
        "fnmr_1e-4": "FNMR@FMR=1e-4 % [95% CI]", "fnmr_1e-5": "FNMR@FMR=1e-5 % [95% CI]", "rank1_pct": "rank-1 %",
    }  # fmt: skip
    for fmr in ("1e-4", "1e-5"):
        if f"fnmr_fmr_{fmr}_pct" in shown:
            shown[f"fnmr_{fmr}"] = [f"{v:.2f} [{lo:.2f}, {hi:.2f}]" for v, lo, hi in zip(
                shown[f"fnmr_fmr_{fmr}_pct"], shown[f"fnmr_fmr_{fmr}_lo_pct"], shown[f"fnmr_fmr_{fmr}_hi_pct"])]
    shown = shown[[c for c in columns if c in shown]].rename(columns=columns)
    lines = [
        "# Detectors: cost on LFW and what their crops do to the pretrained MobileFaceNet",
        "",
        f"Made by `python benchmarks/detectors.py` on {meta['cpu']} ({meta['cores']} cores, shared with other work), "
        f"torch {meta['torch']}, OpenCV {meta['opencv']}, load average at the end {meta['load_average_at_end'][1]:.1f} (other work ran: times are noisy, medians are the fairer figure). {int(table.images.iloc[0])} LFW photos (250x250); "
        "ms = the detector call only, batch 1; 1 thread over every photo, 2 threads over "
        f"{meta['timing_images_2threads']} of them; street clip = the first {meta['clip_frames']} frames of "
        "facenet_pytorch_video.mp4 (1920x1080, searched at 640 px). Accuracy: `facebench verify --model mfn128 "
        "--weights mobilefacenet.pt --align none --no-flip` on each crop set, 6000 pairs, 10 folds; FNMR and rank-1: "
        "the same with `--folders lfw-all=CROPS`, every pair of the 7,701 crops (8,101 genuine, 29,640,749 impostor "
        "pairs), 95 % intervals from a bootstrap over identities (docs/operating-points.md). Fallback = no "
        "face found, centre crop used. Landmark correction (facebench.data.landmarks): fitted on CelebA, never on "
        "LFW; linear is what `--detector yunet|retinaface` applies. Crop vs MTCNN = mean distance between where "
        "MTCNN's five points land in this crop and in MTCNN's own crop (photos where both found a face).",
        "",
        shown.to_markdown(index=False, floatfmt=".2f"),
        "",
    ]
    return "\n".join(lines)


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return "unknown CPU"


if __name__ == "__main__":
    main()
