"""Fit (or refit) the per-detector landmark corrections of facebench.data.landmarks on CelebA training faces.

    python benchmarks/fit_landmarks.py --celeba ../shared/data/celeba --images 2000 \
        --out reports/detectors/landmark_fit.json

For a random sample of CelebA images (seeded; never LFW, the evaluation set) each detector
(uncorrected) and MTCNN detect the main face; where both find it (centres within 10 % of
MTCNN's box width), M = the similarity warp fitted from the detector's points p onto the
ArcFace template T; the target is M(q) - M(p), q = MTCNN's points, in 112 px template pixels.
Fitted on the first half of the matched faces: the constant correction (the per-coordinate
median of the target, averaged with its mirror image) and, on those faces plus their mirror
images (x negated, left and right swapped), the linear one, c + (M(p) - T) @ B by least
squares with ridge 1.0. The second half (held out) measures the crop
disagreement with no correction, the constant one and the linear one: the mean distance, over
the five points, between where MTCNN's points land in the detector's crop and where they land
in MTCNN's own crop (0 = the same crop).
Prints the literals to paste into facebench/data/landmarks.py (OFFSETS_112, LINEAR_112).
"""

from __future__ import annotations

import argparse
import json
import random
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facebench.data.align import ARCFACE_TEMPLATE_112, similarity_to_template
from facebench.data.detectors import main_face
from facebench.data.landmarks import shift_in_template_frame
from facebench.data.mtcnn import MtcnnDetector
from facebench.data.retinaface import RetinaFaceDetector
from facebench.data.yunet import YunetDetector

RIDGE = 1.0
MIRROR = [1, 0, 2, 4, 3]


def warp_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def disagreement(p: np.ndarray, q: np.ndarray) -> float:
    """Mean distance (template px) between MTCNN's points in the crop made from p and in MTCNN's own crop."""
    return float(np.linalg.norm(warp_points(similarity_to_template(p), q) - warp_points(similarity_to_template(q), q),
                                axis=1).mean())  # fmt: skip


def fit(pairs: list[tuple[np.ndarray, np.ndarray]]) -> tuple[np.ndarray, np.ndarray]:
    """(c, B) from (detector points, MTCNN points) pairs and their mirror images."""
    mirrored = [(p[MIRROR] * [-1.0, 1.0], q[MIRROR] * [-1.0, 1.0]) for p, q in pairs]
    features, targets = [], []
    for p, q in pairs + mirrored:
        matrix = similarity_to_template(p)
        warped = warp_points(matrix, p)
        features.append(np.append(1.0, (warped - ARCFACE_TEMPLATE_112).ravel()))
        targets.append((warp_points(matrix, q) - warped).ravel())
    x, y = np.array(features), np.array(targets)
    penalty = RIDGE * np.eye(11)
    penalty[0, 0] = 0.0  # the intercept is not shrunk
    weights = np.linalg.solve(x.T @ x + penalty, x.T @ y)
    return weights[0].reshape(5, 2), weights[1:]


def median_offset(pairs: list[tuple[np.ndarray, np.ndarray]]) -> np.ndarray:
    """The constant correction: per-coordinate median of M(q) - M(p), averaged with its mirror image."""
    offsets = np.median([warp_points(similarity_to_template(p), q) - warp_points(similarity_to_template(p), p)
                         for p, q in pairs], axis=0)  # fmt: skip
    return (offsets + offsets[MIRROR] * [-1.0, 1.0]) / 2


def literal(name: str, mean_offset: np.ndarray, slope: np.ndarray) -> str:
    c = ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in mean_offset)
    rows = ",\n".join("        [" + ", ".join(f"{v:.4f}" for v in row) + "]" for row in slope)
    return f'    "{name}": (\n        np.array([{c}]),\n        np.array([\n{rows}\n        ]),\n    ),'


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--points", type=Path, help="matched points (.npz): read if it exists (no detection), else written")
    parser.add_argument("--out", type=Path, default=Path("reports/detectors/landmark_fit.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    names = ("yunet", "retinaface")
    started = time.perf_counter()
    if args.points and args.points.is_file():
        saved = np.load(args.points)
        pairs = {name: list(zip(saved[f"{name}_det"], saved[f"{name}_mtcnn"], strict=True)) for name in names}
        missed, no_reference, sample = {name: int(saved[f"{name}_missed"]) for name in names}, int(saved["no_reference"]), int(saved["images"])
    else:
        pairs, missed, no_reference, sample = detect_pairs(args.celeba, args.images, args.seed)
        if args.points:
            np.savez(args.points, images=sample, no_reference=no_reference,
                     **{f"{n}_missed": missed[n] for n in names},
                     **{f"{n}_{kind}": np.array([pq[k] for pq in pairs[n]]) for n in names
                        for k, kind in enumerate(("det", "mtcnn"))})  # fmt: skip
    result = {"celeba": str(args.celeba), "images": sample, "seed": args.seed, "mtcnn_found_no_face": no_reference,
              "ridge": RIDGE, "seconds": round(time.perf_counter() - started, 1), "detectors": {}}  # fmt: skip
    literals, constants = [], []
    for name in names:
        matched = [(np.asarray(p, np.float64), np.asarray(q, np.float64)) for p, q in pairs[name]]
        fit_half, held_out = matched[0::2], matched[1::2]
        mean_offset, slope = fit(fit_half)
        constant = median_offset(fit_half)
        figures = {}
        for label, move in (("none", lambda p: p), ("constant", lambda p: shift_in_template_frame(p, constant)),
                            ("linear", lambda p: shift_in_template_frame(p, mean_offset, slope))):  # fmt: skip
            values = [disagreement(move(p), q) for p, q in held_out]
            figures[label] = {"mean": round(float(np.mean(values)), 3), "median": round(float(np.median(values)), 3)}
        result["detectors"][name] = {
            "matched": len(matched), "not_matched": missed[name], "fit_faces": len(fit_half), "held_out_faces": len(held_out),
            "constant_offset_112": np.round(constant, 4).tolist(),
            "linear_intercept_112": np.round(mean_offset, 4).tolist(), "linear_slope": np.round(slope, 4).tolist(),
            "held_out_crop_disagreement_px": figures,
        }  # fmt: skip
        literals.append(literal(name, mean_offset, slope))
        constants.append(f'    "{name}": np.array([' + ", ".join(f"[{x:.4f}, {y:.4f}]" for x, y in constant) + "]),")
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({n: d["held_out_crop_disagreement_px"] for n, d in result["detectors"].items()}, indent=1))
    print("OFFSETS_112: dict[str, np.ndarray] = {\n" + "\n".join(constants) + "\n}")
    print("LINEAR_112: dict[str, tuple[np.ndarray, np.ndarray]] = {\n" + "\n".join(literals) + "\n}")


def detect_pairs(celeba: Path, images: int, seed: int):
    files = sorted(str(p.relative_to(celeba)) for p in celeba.rglob("*.jpg"))
    sample = sorted(random.Random(seed).sample(files, min(images, len(files))))
    reference = MtcnnDetector()
    detectors = {"yunet": YunetDetector(correction="none"), "retinaface": RetinaFaceDetector(correction="none")}
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in detectors}
    missed = {name: 0 for name in detectors}
    no_reference = 0
    for file in sample:
        image = cv2.cvtColor(cv2.imread(str(celeba / file)), cv2.COLOR_BGR2RGB)
        height, width = image.shape[:2]
        ref_faces = reference.detect(image)
        if not ref_faces:
            no_reference += 1
            continue
        ref = main_face(ref_faces, height, width)
        ref_centre, ref_width = (ref.box[:2] + ref.box[2:]) / 2, ref.box[2] - ref.box[0]
        for name, detector in detectors.items():
            faces = detector.detect(image)
            face = main_face(faces, height, width) if faces else None
            if (face is None or np.linalg.norm((face.box[:2] + face.box[2:]) / 2 - ref_centre) > 0.1 * ref_width
                    or similarity_to_template(face.landmarks) is None or similarity_to_template(ref.landmarks) is None):  # fmt: skip
                missed[name] += 1
                continue
            pairs[name].append((face.landmarks.astype(np.float64), ref.landmarks.astype(np.float64)))
    return pairs, missed, no_reference, len(sample)


if __name__ == "__main__":
    main()
