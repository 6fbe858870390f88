"""Align every image of a folder tree into another with the same layout (``facebench align``).

Each aligned image is written atomically (temporary file + rename), and
``align_report.csv`` in the destination records, per source file:

    file       path relative to src (POSIX separators)
    status     "aligned", or "corrupt" (unreadable image skipped with skip_bad)
    detector   mtcnn, haar or center
    score      the detector's score for the face used (empty: none used)
    fallback   1 when no face was found and the centre crop was used, else 0
    faces      faces the detector found in the image
    time_ms    read + detect + warp + encode + write, for this image

The report is rewritten (atomically) every few seconds, so a run that is stopped can be
resumed: an image counts as done when its aligned file exists and the report lists it as
aligned by the same detector; everything else is (re)done.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ProcessPoolExecutor
from contextlib import closing, contextmanager
from dataclasses import dataclass
from multiprocessing import get_context
from pathlib import Path

import cv2
import numpy as np

from facebench.choices import ALIGN_DETECTORS
from facebench.data.align import align_face
from facebench.data.detectors import get_detector
from facebench.data.images import IMAGE_SUFFIXES, decode_image, encode_jpeg, read_bytes
from facebench.errors import FacebenchError
from facebench.fileio import atomic_path, write_text_atomic

REPORT_NAME = "align_report.csv"
REPORT_COLUMNS = ("file", "status", "detector", "score", "fallback", "faces", "time_ms")
CHECKPOINT_EVERY_S = 5.0  # how often the report is rewritten during a run


@dataclass
class AlignSummary:
    """What one ``align_folder`` call did; counts are over the whole folder unless noted."""

    report: Path
    images: int  # image files under src
    already_done: int  # skipped because an earlier run aligned them
    processed: int  # aligned or found corrupt by this call
    aligned: int  # aligned images in dst (this call and earlier ones)
    by_detector: int  # aligned on a detected face
    fallback: int  # aligned by the centre-crop fallback (no face found)
    corrupt: list[str]  # unreadable files skipped (relative paths)
    wall_s: float  # this call, start to end
    mean_time_ms: float  # mean time_ms of the images this call aligned (nan if none)


def list_source_images(src: Path) -> list[str]:
    """Image files under src (any depth), as sorted POSIX paths relative to src; hidden ones ignored."""
    return sorted(
        path.relative_to(src).as_posix()
        for path in src.rglob("*")
        if path.suffix.lower() in IMAGE_SUFFIXES
        and path.is_file()
        and not any(part.startswith(".") for part in path.relative_to(src).parts)
    )


def read_report(path: Path) -> dict[str, dict[str, str]]:
    """Rows of an existing report by file; {} when there is none or it is not ours."""
    if not path.is_file():
        return {}
    with path.open(newline="", encoding="utf-8") as handle:
        reader = csv.DictReader(handle)
        if tuple(reader.fieldnames or ()) != REPORT_COLUMNS:
            return {}
        return {row["file"]: row for row in reader}


def write_report(path: Path, rows: dict[str, dict[str, str]]) -> None:
    """The report, sorted by file, written atomically."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=REPORT_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows[file] for file in sorted(rows))
    write_text_atomic(path, buffer.getvalue())


def align_folder(
    src: str | Path,
    dst: str | Path,
    *,
    detector: str = "mtcnn",
    workers: int = 1,
    skip_bad: bool = False,
    progress: Callable[[int], None] | None = None,
) -> AlignSummary:
    """Align every image under src into dst (same relative paths and formats), resumably.

    progress(n) is called as images are finished (including those already done).
    Raises FacebenchError for a bad src/dst/detector, and for the first unreadable image
    unless skip_bad (images finished before it stay written and reported).
    """
    started = time.perf_counter()
    src, dst = Path(src), Path(dst)
    files = _check_arguments(src, dst, detector, workers)
    if detector != "center":
        get_detector(detector)  # weights fetched and checked once, before any worker starts
    report = dst / REPORT_NAME
    rows = read_report(report)
    done = {f for f in files if _is_done(rows.get(f), detector, dst / f)}
    rows = {f: rows[f] for f in done}  # forget rows of files gone or to be redone
    todo = [f for f in files if f not in done]
    if progress and done:
        progress(len(done))

    processed, processed_ms = 0, []
    last_checkpoint = time.perf_counter()
    with closing(_run(todo, src, dst, detector, workers)) as results:
        try:
            for row in results:
                if row["status"] == "corrupt" and not skip_bad:
                    raise FacebenchError(row.pop("error"))
                row.pop("error", None)
                rows[row["file"]] = row
                if row["status"] == "aligned":
                    processed_ms.append(float(row["time_ms"]))
                processed += 1
                if progress:
                    progress(1)
                if time.perf_counter() - last_checkpoint > CHECKPOINT_EVERY_S:
                    write_report(report, rows)
                    last_checkpoint = time.perf_counter()
        finally:
            write_report(report, rows)

    aligned = [row for row in rows.values() if row["status"] == "aligned"]
    return AlignSummary(
        report=report,
        images=len(files),
        already_done=len(done),
        processed=processed,
        aligned=len(aligned),
        by_detector=sum(row["fallback"] == "0" and row["detector"] != "center" for row in aligned),
        fallback=sum(row["fallback"] == "1" for row in aligned),
        corrupt=sorted(file for file, row in rows.items() if row["status"] == "corrupt"),
        wall_s=time.perf_counter() - started,
        mean_time_ms=float(np.mean(processed_ms)) if processed_ms else float("nan"),
    )


def _check_arguments(src: Path, dst: Path, detector: str, workers: int) -> list[str]:
    if detector not in ALIGN_DETECTORS:
        raise FacebenchError(f"unknown detector {detector!r}; choose one of: {', '.join(ALIGN_DETECTORS)}")
    if workers < 1:
        raise FacebenchError(f"--workers must be at least 1, got {workers}")
    if not src.is_dir():
        raise FacebenchError(f"{src}: source folder not found; pass --src an existing folder of images")
    if dst.resolve() == src.resolve() or dst.resolve().is_relative_to(src.resolve()):
        raise FacebenchError(f"{dst}: destination lies inside the source {src}; choose a folder outside it")
    files = list_source_images(src)
    if not files:
        raise FacebenchError(f"{src}: no images ({', '.join(IMAGE_SUFFIXES)}) found at any depth")
    return files


def _is_done(row: dict[str, str] | None, detector: str, output: Path) -> bool:
    return row is not None and row["status"] == "aligned" and row["detector"] == detector and output.is_file()


def _run(files: list[str], src: Path, dst: Path, detector: str, workers: int) -> Iterator[dict[str, str]]:
    """Report rows of the given files, in order, from this process or a pool of workers."""
    tasks: Iterable[tuple[str, Path, Path, str]] = ((f, src / f, dst / f, detector) for f in files)
    if workers == 1 or len(files) < 2:
        with _one_torch_thread(enabled=detector != "center"):
            yield from map(_align_one, tasks)
        return
    context = get_context("spawn")  # a fresh interpreter per worker: safe with torch's thread pools
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_start_worker, initargs=(detector,)) as pool:
        try:
            yield from pool.map(_align_one, tasks, chunksize=8)
        finally:
            pool.shutdown(wait=True, cancel_futures=True)


@contextmanager
def _one_torch_thread(enabled: bool) -> Iterator[None]:
    """MTCNN's nets are tiny: extra torch threads only contend (15x slower on 2 busy cores)."""
    if not enabled:
        yield
        return
    import torch

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _start_worker(detector: str) -> None:
    """Each worker uses one thread and builds its detector once."""
    if detector != "center":
        import torch

        torch.set_num_threads(1)
        get_detector(detector)


def _align_one(task: tuple[str, Path, Path, str]) -> dict[str, str]:
    """Read, align and atomically write one image; its report row (with 'error' when corrupt)."""
    file, source, output, detector = task
    started = time.perf_counter()
    try:
        image = decode_image(read_bytes(source), str(source))
    except FacebenchError as exc:
        return {"file": file, "status": "corrupt", "detector": detector, "score": "", "fallback": "",
                "faces": "", "time_ms": f"{(time.perf_counter() - started) * 1e3:.1f}", "error": str(exc)}
    crop, info = align_face(image, detector)
    data = _encode(crop, output.suffix.lower())
    with atomic_path(output) as tmp:
        tmp.write_bytes(data)
    return {
        "file": file,
        "status": "aligned",
        "detector": info.detector,
        "score": "" if info.score is None else f"{info.score:.4f}",
        "fallback": str(int(info.fallback)),
        "faces": str(info.faces),
        "time_ms": f"{(time.perf_counter() - started) * 1e3:.1f}",
    }


def _encode(rgb: np.ndarray, suffix: str) -> bytes:
    """Encode in the source's format (JPEG at quality 95)."""
    if suffix in (".jpg", ".jpeg"):
        return encode_jpeg(rgb)
    ok, buffer = cv2.imencode(suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"OpenCV could not encode {suffix}")
    return buffer.tobytes()
