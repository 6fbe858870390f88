"""Fit (or refit) the per-detector landmark offsets of facebench.data.landmarks on CelebA training faces.

    python benchmarks/fit_landmarks.py --celeba ../shared/data/celeba --images 2000 \
        --out reports/detectors/landmark_fit.json

For a random sample of CelebA images (seeded; never LFW, the evaluation set) each detector
(uncorrected) and MTCNN detect the main face; where both find it (centres within 10 % of
MTCNN's box width), M = the similarity warp fitted from the detector's points p onto the
ArcFace template, and d_i = M(q) - M(p), q = MTCNN's points, in 112 px template pixels.
The offsets are the per-coordinate median of d_i on the first half of the matched images
(the fit half), made left-right symmetric (averaged with their mirror image); the second half (held out) measures the crop disagreement before and after:
the mean distance, over the five points, between where MTCNN's points land in the detector's
crop and where they land in MTCNN's own crop (0 = the same crop).
Prints the offsets as the Python literal to paste into facebench/data/landmarks.py.
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

from facebench.data.align import similarity_to_template
from facebench.data.detectors import main_face
from facebench.data.landmarks import shift_in_template_frame
from facebench.data.mtcnn import MtcnnDetector
from facebench.data.retinaface import RetinaFaceDetector
from facebench.data.yunet import YunetDetector


def warp_points(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    return points @ matrix[:, :2].T + matrix[:, 2]


def disagreement(p: np.ndarray, q: np.ndarray) -> float:
    """Mean distance (template px) between MTCNN's points in the crop made from p and in MTCNN's own crop."""
    return float(np.linalg.norm(warp_points(similarity_to_template(p), q) - warp_points(similarity_to_template(q), q),
                                axis=1).mean())  # fmt: skip


def symmetric(offsets: np.ndarray) -> np.ndarray:
    """Offsets made left-right symmetric (a detector trained with flips has no side preference; the
    sample's head poses may): averaged with their mirror image (x negated, left and right swapped)."""
    mirrored = offsets[[1, 0, 2, 4, 3]] * np.array([-1.0, 1.0])
    return (offsets + mirrored) / 2


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--celeba", type=Path, default=Path("../shared/data/celeba"))
    parser.add_argument("--images", type=int, default=2000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--save-points", type=Path, help="also save the matched points (.npz) for other fits")
    parser.add_argument("--out", type=Path, default=Path("reports/detectors/landmark_fit.json"))
    args = parser.parse_args()
    torch.set_num_threads(1)
    cv2.setNumThreads(1)
    files = sorted(str(p.relative_to(args.celeba)) for p in args.celeba.rglob("*.jpg"))
    sample = sorted(random.Random(args.seed).sample(files, min(args.images, len(files))))
    reference = MtcnnDetector()
    detectors = {"yunet": YunetDetector(correct=False), "retinaface": RetinaFaceDetector(correct=False)}
    pairs: dict[str, list[tuple[np.ndarray, np.ndarray]]] = {name: [] for name in detectors}
    missed = {name: 0 for name in detectors}
    no_reference = 0
    started = time.perf_counter()
    for file in sample:
        image = cv2.cvtColor(cv2.imread(str(args.celeba / file)), cv2.COLOR_BGR2RGB)
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
            if face is None or np.linalg.norm((face.box[:2] + face.box[2:]) / 2 - ref_centre) > 0.1 * ref_width:
                missed[name] += 1
                continue
            if similarity_to_template(face.landmarks) is None or similarity_to_template(ref.landmarks) is None:
                missed[name] += 1
                continue
            pairs[name].append((face.landmarks.astype(np.float64), ref.landmarks.astype(np.float64)))
    if args.save_points:
        np.savez(args.save_points, **{f"{name}_{kind}": np.array([pq[k] for pq in matched]).reshape(-1, 5, 2)
                                      for name, matched in pairs.items() for k, kind in enumerate(("det", "mtcnn"))})
    result = {"celeba": str(args.celeba), "images": len(sample), "seed": args.seed,
              "mtcnn_found_no_face": no_reference, "seconds": round(time.perf_counter() - started, 1),
              "detectors": {}}  # fmt: skip
    literal = []
    for name, matched in pairs.items():
        fit, held_out = matched[0::2], matched[1::2]
        raw = np.median([warp_points(similarity_to_template(p), q) - warp_points(similarity_to_template(p), p)
                         for p, q in fit], axis=0)  # fmt: skip
        offsets = symmetric(raw)
        before = [disagreement(p, q) for p, q in held_out]
        after = [disagreement(shift_in_template_frame(p, offsets), q) for p, q in held_out]
        result["detectors"][name] = {
            "matched": len(matched), "not_matched": missed[name], "fit_images": len(fit), "held_out_images": len(held_out),
            "offsets_112_median": np.round(raw, 3).tolist(),
            "offsets_112": np.round(offsets, 3).tolist(),
            "held_out_crop_disagreement_px_before": {"mean": float(np.mean(before)), "median": float(np.median(before))},
            "held_out_crop_disagreement_px_after": {"mean": float(np.mean(after)), "median": float(np.median(after))},
        }  # fmt: skip
        rows = ", ".join(f"[{x:.3f}, {y:.3f}]" for x, y in offsets)
        literal.append(f'    "{name}": np.array([{rows}], dtype=np.float32),')
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))
    print("OFFSETS_112 = {\n" + "\n".join(literal) + "\n}")


if __name__ == "__main__":
    main()
