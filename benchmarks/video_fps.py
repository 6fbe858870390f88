"""End-to-end video fps: facebench's pipeline against a plain per-frame loop, same run, same cores.

The plain loop is what one writes first: read a frame, detect, then for each face warp it
(``warp_to_template``), make a 1-image tensor (``to_model_input``) and run the model,
with torch using all ``--threads`` threads inside each operation, and again with one
thread (more threads can make it slower); ratios are against the faster of the two.
facebench's pipeline (``profile --video``) decodes into reused buffers, warps every face
into one reused crop buffer and sends the faces through the model as one batch normalised
in a reused input buffer. Four settings of it, each against the plain loop:

- per frame: one frame's faces per batch, ``--threads`` threads inside each operation
  (``profile --video`` defaults);
- K frames: the faces of K consecutive frames per batch (``--batch-frames K``);
- per frame / K frames x T workers: as above, with T = ``--threads`` groups of frames
  processed at once, one thread each (``--workers T --threads 1``), while the main thread
  decodes. The same cores as the plain loop; only where the threads work differs (whole
  frames against the inside of each operation, which detection's many small operations
  barely use).

``--threads`` pins torch's and OpenCV's thread counts alike (``pinned_threads``).

Same MTCNN weights, same model object, same frames, ``torch.inference_mode`` everywhere;
rounds alternate the loops so machine drift hits all alike; fps = frames / wall seconds of
the whole loop, CPU ms = process CPU time per frame (all threads). The embeddings of
every pipeline setting are compared with the plain loop's (they must agree) so all did
the same work.

Clips: the real one (../shared/data/videos, a street with about 2.5 detected faces per
frame) and, with --crowd N, a synthetic clip of N LFW faces per frame, to show how the
gain grows with faces per frame.

With ``--facenet-pytorch`` a third reference: facenet-pytorch's MTCNN loop as its README shows
(``MTCNN(image_size=112, margin=0, keep_all=True)``, ``faces = mtcnn(PIL image)``, the model on
the stacked faces), with facenet-pytorch installed beside, never into, facebench's environment;
``--plain-detector mtcnn`` keeps the plain loop on MTCNN while the pipeline uses --detector.

Usage: python benchmarks/video_fps.py [--models mobilenet,r18] [--frames 48] [--rounds 3]
           [--threads 2] [--batch-frames 4] [--device cpu] [--detector mtcnn] [--crowd 8]
           [--plain-detector mtcnn] [--facenet-pytorch] [--data ../shared/data]
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
import torch

from facebench.data.align import warp_to_template
from facebench.device import acceleration_flags, device_name, flags_text, resolve_device
from facebench.input_spec import model_input_spec, to_model_input
from facebench.models import create_model
from facebench.profiling.runtime import pinned_threads
from facebench.profiling.video import video_detector
from facebench.profiling.video_pipeline import BatchEmbedder, VideoPipeline
from facebench.profiling.video_stream import stream_results

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def plain_loop(video: Path, detector, model: torch.nn.Module, device: torch.device, frames: int) -> list[np.ndarray]:
    """detect -> align -> embed one face at a time; returns every face's embedding."""
    capture = cv2.VideoCapture(str(video))
    embeddings = []
    spec = model_input_spec(model)  # the model's own normalisation (mfn128: ImageNet), as the pipeline uses
    with torch.inference_mode():
        for _ in range(frames):
            ok, bgr = capture.read()
            if not ok:
                break
            rgb = cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)
            for face in detector.detect(rgb):
                crop = warp_to_template(rgb, face.landmarks)
                embeddings.append(model(to_model_input(crop, spec)[None].to(device))[0].float().cpu().numpy())
    capture.release()
    return embeddings


def facenet_pytorch_loop(video: Path, mtcnn, model: torch.nn.Module, device: torch.device, frames: int) -> list[np.ndarray]:
    """facenet-pytorch as its README shows: ``faces = mtcnn(PIL image)`` (keep_all, 112 px crops,
    its own prewhitening), then the model on the stacked faces; returns every face's embedding."""
    from PIL import Image

    capture = cv2.VideoCapture(str(video))
    embeddings = []
    with torch.inference_mode():
        for _ in range(frames):
            ok, bgr = capture.read()
            if not ok:
                break
            faces = mtcnn(Image.fromarray(cv2.cvtColor(bgr, cv2.COLOR_BGR2RGB)))
            if faces is not None:
                embeddings.extend(model(faces.to(device)).float().cpu().numpy())
    capture.release()
    return embeddings


def pipeline_loop(video: Path, pipelines: list[VideoPipeline], frames: int, batch_frames: int) -> list[np.ndarray]:
    """facebench's pipeline over the same frames; returns every face's embedding."""
    embeddings = []
    with torch.inference_mode():
        for _, result in stream_results(pipelines, video, max_frames=frames, batch_frames=batch_frames):
            embeddings.extend(result.embeddings)
    return embeddings


def timed(fn: Callable, threads: int, *args) -> tuple[float, float, list[np.ndarray]]:
    """Wall seconds, process CPU seconds and the result of fn(*args) with torch pinned to ``threads``."""
    with pinned_threads(threads):
        wall, cpu = time.perf_counter(), time.process_time()
        out = fn(*args)
        return time.perf_counter() - wall, time.process_time() - cpu, out


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


def build_loops(video: Path, name: str, args: argparse.Namespace, device: torch.device) -> dict[str, tuple[int, Callable]]:
    """label -> (torch threads inside each operation, loop over the first n frames) for one model."""
    k, t = args.batch_frames, args.threads
    model = create_model(name).eval().to(device)
    plain_detector = video_detector(args.plain_detector or args.detector, device)

    def pipelines(count: int) -> list[VideoPipeline]:
        """``count`` pipelines (one per worker: own detector and buffers) sharing the model."""
        return [VideoPipeline(video_detector(args.detector, device), BatchEmbedder(model, device)) for _ in range(count)]

    single, team = pipelines(1), pipelines(t)
    loops = {
        "plain loop": (t, lambda n: plain_loop(video, plain_detector, model, device, n)),
        "per frame": (t, lambda n: pipeline_loop(video, single, n, 1)),
        f"{k} frames": (t, lambda n: pipeline_loop(video, single, n, k)),
    }
    if args.facenet_pytorch:
        from facenet_pytorch import MTCNN  # pip install --no-deps --target DIR facenet-pytorch==2.6.0; PYTHONPATH=DIR

        mtcnn = MTCNN(image_size=112, margin=0, keep_all=True, device=device)
        loops["facenet-pytorch loop"] = (t, lambda n: facenet_pytorch_loop(video, mtcnn, model, device, n))
    if t > 1:
        loops["plain loop, 1 thread"] = (1, loops["plain loop"][1])
        if args.facenet_pytorch:
            loops["facenet-pytorch, 1 thread"] = (1, loops["facenet-pytorch loop"][1])
        loops[f"per frame x {t} workers"] = (1, lambda n: pipeline_loop(video, team, n, 1))
        loops[f"{k} frames x {t} workers"] = (1, lambda n: pipeline_loop(video, team, n, k))
    return loops


def compare(video: Path, label: str, names: list[str], args: argparse.Namespace, device: torch.device) -> None:
    for name in names:
        loops = build_loops(video, name, args, device)
        for threads, loop in loops.values():
            timed(loop, threads, 2 * args.batch_frames)  # warm-up, untimed
        walls: dict[str, list[float]] = {loop_label: [] for loop_label in loops}
        cpus: dict[str, list[float]] = {loop_label: [] for loop_label in loops}
        outputs: dict[str, list[np.ndarray]] = {}
        for _ in range(args.rounds):
            for loop_label, (threads, loop) in loops.items():
                wall, cpu, outputs[loop_label] = timed(loop, threads, args.frames)
                walls[loop_label].append(wall)
                cpus[loop_label].append(cpu)
        reference = "per frame" if args.plain_detector and args.plain_detector != args.detector else "plain loop"
        plain = np.stack(outputs[reference]) if outputs[reference] else np.zeros((0, 1))
        plain_fps = max(args.frames / np.median(walls[key]) for key in loops if key.startswith("plain loop"))
        fpt = [args.frames / np.median(walls[key]) for key in loops if key.startswith("facenet-pytorch")]
        print(f"{label} | {name} | {len(plain) / args.frames:.1f} faces/frame ({args.detector}) | ratios against the "
              f"faster plain loop ({args.plain_detector or args.detector})"
              + (" and the faster facenet-pytorch loop" if fpt else ""))  # fmt: skip
        for loop_label, got in outputs.items():
            fps = args.frames / np.median(walls[loop_label])
            cpu_ms = 1e3 * np.median(cpus[loop_label]) / args.frames
            against = f"  ratio {fps / plain_fps:4.2f}x" + (f", {fps / max(fpt):4.2f}x facenet-pytorch" if fpt else "")
            if loop_label.startswith("facenet-pytorch") or (reference != "plain loop" and loop_label.startswith("plain")):
                print(f"  {loop_label:<26} {fps:6.2f} fps  {cpu_ms:6.1f} CPU ms/frame{against}  ({len(got)} faces)")
                continue  # another detector or crop: its embeddings are not comparable
            if len(got) != len(plain):
                raise SystemExit(f"{label} {name} {loop_label}: saw {len(got)} faces, {reference} {len(plain)}")
            # largest difference relative to the largest embedding value: float rounding only
            diff = float(np.abs(np.stack(got) - plain).max() / np.abs(plain).max()) if len(plain) else 0.0
            print(f"  {loop_label:<26} {fps:6.2f} fps  {cpu_ms:6.1f} CPU ms/frame{against}"
                  f"  (embeddings agree to {diff:.1e} relative)")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--models", default="mobilenet,r18")
    parser.add_argument("--frames", type=int, default=48)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2,
                        help="cores for every loop: torch and OpenCV threads (the pipeline's workers)")  # fmt: skip
    parser.add_argument("--batch-frames", type=int, default=4, help="K: frames whose faces share one batch")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--detector", default="mtcnn")
    parser.add_argument("--plain-detector", help="the plain loop's detector (default: --detector's), e.g. mtcnn")
    parser.add_argument("--facenet-pytorch", action="store_true",
                        help="also time a facenet-pytorch MTCNN loop (facenet-pytorch importable, never a facebench "
                             "dependency: pip install --no-deps --target DIR facenet-pytorch==2.6.0; PYTHONPATH=DIR)")
    parser.add_argument("--crowd", type=int, default=8, help="faces per frame of the synthetic clip (0: skip it)")
    parser.add_argument("--data", type=Path, default=DATA, help="folder with videos/ and lfw/ (../shared/data)")
    args = parser.parse_args()
    device = resolve_device(args.device)
    names = [n for n in args.models.split(",") if n]
    print(f"{device_name(device)}, torch {torch.__version__}, {args.threads} thread(s) (torch and OpenCV), fp32, "
          f"{args.detector}, {args.frames} frames x {args.rounds} rounds (median); target: pipeline >= 1.5x plain loop")
    print(f"CPU flags: {flags_text(acceleration_flags())}; 1-min load at the start {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as tmp:
        real_clip = args.data / "videos" / "facenet_pytorch_video.mp4"
        if real_clip.is_file():
            compare(real_clip, "real clip", names, args, device)
        if args.crowd and (args.data / "lfw").is_dir():
            clip = crowd_clip(args.data / "lfw", Path(tmp), args.crowd, args.frames + 2)
            compare(clip, f"crowd x{args.crowd}", names, args, device)


if __name__ == "__main__":
    main()
