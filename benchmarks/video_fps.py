"""End-to-end video fps: facebench's pipeline against a plain per-frame loop, same run.

The plain loop is what one writes first: read a frame, detect, then for each face warp it
(``warp_to_template``), make a 1-image tensor (``to_model_input``) and run the model.
facebench's pipeline (``profile --video``) decodes into reused buffers, warps every face
into one reused crop buffer, and sends the frame's faces through the model as one batch
normalised in a reused input buffer. Same detector object, same model object, same
frames, ``torch.inference_mode`` in both; rounds alternate (plain, pipeline, plain, ...)
so machine drift hits both alike; fps = frames / wall seconds of the whole loop.
The embeddings of the two paths are compared (they must agree) so both did the same work.

Clips: the real one (../shared/data/videos, a street with about 2 detected faces per
frame) and, with --crowd N, a synthetic clip of N LFW faces per frame, to show how the
gain grows with faces per frame.

Usage: python benchmarks/video_fps.py [--models mobilenet,r18] [--frames 30] [--rounds 3]
           [--threads 1] [--device cpu] [--detector mtcnn] [--crowd 8] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import cv2
import numpy as np
import torch

from facebench.data.align import warp_to_template
from facebench.device import device_name, resolve_device
from facebench.models import create_model
from facebench.models.input_spec import to_model_input
from facebench.profiling.frames import read_frames
from facebench.profiling.runtime import pinned_threads
from facebench.profiling.video import (
    STAGES,
    BatchEmbedder,
    VideoPipeline,
    video_detector,
)

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def plain_loop(video: Path, detector, model: torch.nn.Module, device: torch.device, frames: int) -> list[np.ndarray]:
    """detect -> align -> embed one face at a time; returns every face's embedding."""
    capture = cv2.VideoCapture(str(video))
    embeddings = []
    with torch.inference_mode():
        for _ in range(frames):
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for face in detector.detect(rgb):
                crop = warp_to_template(rgb, face.landmarks)
                embeddings.append(model(to_model_input(crop)[None].to(device))[0].float().cpu().numpy())
    capture.release()
    return embeddings


def pipeline_loop(video: Path, pipeline: VideoPipeline, frames: int, stage_ms: list | None = None) -> list[np.ndarray]:
    """facebench's pipeline over the same frames; returns every face's embedding (stage times into stage_ms)."""
    embeddings = []
    with torch.inference_mode():
        for frame in read_frames(video, max_frames=frames):
            result = pipeline.process(frame)
            embeddings.extend(result.embeddings)
            if stage_ms is not None:
                stage_ms.append(result.stage_ms)
    return embeddings


def timed(fn, *args) -> tuple[float, list[np.ndarray]]:
    start = time.perf_counter()
    out = fn(*args)
    return time.perf_counter() - start, out


def crowd_clip(lfw: Path, folder: Path, faces: int, frames: int) -> Path:
    """``faces`` LFW faces (150 px, two rows) on a 1280x720 grey frame, drifting 3 px per frame."""
    images = sorted(lfw.glob("*/*_0001.jpg"))[:faces]
    crops = [cv2.resize(cv2.imread(str(p))[30:220, 30:220], (150, 150)) for p in images]
    path = folder / f"crowd{faces}.mp4"
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (1280, 720))
    per_row = -(-faces // 2)
    for k in range(frames):
        frame = np.full((720, 1280, 3), 100, dtype=np.uint8)
        for i, crop in enumerate(crops):
            x = 40 + (i % per_row) * (1200 // per_row) + 3 * k
            y = 80 + (i // per_row) * 330
            frame[y : y + 150, x : x + 150] = crop
        writer.write(frame)
    writer.release()
    return path


def compare(video: Path, label: str, names: list[str], args: argparse.Namespace, device: torch.device) -> None:
    detector = video_detector(args.detector, device)
    for name in names:
        model = create_model(name).eval().to(device)
        pipeline = VideoPipeline(detector, BatchEmbedder(model, device))
        plain_loop(video, detector, model, device, 2)  # warm-up, untimed
        pipeline_loop(video, pipeline, 2)
        plain_s, fast_s, stage_ms = [], [], []
        for _ in range(args.rounds):
            seconds, plain = timed(plain_loop, video, detector, model, device, args.frames)
            plain_s.append(seconds)
            seconds, fast = timed(pipeline_loop, video, pipeline, args.frames, stage_ms)
            fast_s.append(seconds)
        if len(plain) != len(fast):
            raise SystemExit(f"{label} {name}: the two loops saw different faces ({len(plain)} vs {len(fast)})")
        # largest difference relative to the largest embedding value: float rounding only
        diff = float(np.abs(np.stack(plain) - np.stack(fast)).max() / np.abs(np.stack(plain)).max()) if plain else 0.0
        plain_fps, fast_fps = args.frames / np.median(plain_s), args.frames / np.median(fast_s)
        print(f"{label:<12} {name:<10} faces/frame {len(fast) / args.frames:4.1f}  plain {plain_fps:6.2f} fps  "
              f"pipeline {fast_fps:6.2f} fps  ratio {fast_fps / plain_fps:4.2f}x  (embeddings agree to {diff:.1e} relative)")
        means = np.mean(stage_ms, axis=0)
        # Amdahl: decode + detect + align are the same work in both loops, so even a free
        # embed stage could not make the pipeline faster than this against the plain loop
        bound = (1e3 / plain_fps) / (means[:3].sum())
        print(f"{'':<23} pipeline ms/frame: " + ", ".join(f"{s} {m:.1f}" for s, m in zip(STAGES, means, strict=True))
              + f"; ceiling with a free embed stage: {bound:.2f}x")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenet,r18")
    parser.add_argument("--frames", type=int, default=30)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--crowd", type=int, default=8, help="faces per frame of the synthetic clip (0: skip it)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with videos/ and lfw/ (../shared/data)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    names = [n for n in args.models.split(",") if n]
    print(f"{device_name(device)}, torch {torch.__version__}, {args.threads} thread(s), fp32, {args.detector}, "
          f"{args.frames} frames x {args.rounds} rounds (median); target: pipeline >= 1.5x plain")
    with pinned_threads(args.threads), tempfile.TemporaryDirectory() as tmp:
        real_clip = args.data / "videos" / "facenet_pytorch_video.mp4"
        if real_clip.is_file():
            compare(real_clip, "real clip", names, args, device)
        if args.crowd and (args.data / "lfw").is_dir():
            clip = crowd_clip(args.data / "lfw", Path(tmp), args.crowd, args.frames + 2)
            compare(clip, f"crowd x{args.crowd}", names, args, device)


if __name__ == "__main__":
    main()
