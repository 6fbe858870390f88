"""Degraded capture: what a poor camera does to an aligned 112x112 face, as a named, seeded recipe.

A recipe is one or more steps joined by ``+``, applied left to right to the aligned uint8 RGB crop:

- ``downscale:S``: shrink to S x S px (INTER_AREA) and back to 112 (INTER_LINEAR), a face S px wide;
- ``jpeg:Q``: encode as JPEG at quality Q (1-100) and decode;
- ``blur:SIGMA``: Gaussian blur, sigma in px (kernel 2 * ceil(3 sigma) + 1);
- ``noise:SIGMA``: additive Gaussian noise, sigma in 0-255 intensity levels, rounded and clipped;
- ``dark:F``: brightness scaled by F (0 < F <= 1), i.e. every intensity times F, rounded.

``noise`` is the only random step; its generator is seeded by (seed, CRC-32 of the image's path or encoded
bytes), so an image gets the same noise whatever set, batch order or worker count it comes in, and a recipe
repeats exactly for a seed.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Callable
from dataclasses import dataclass

import cv2
import numpy as np

from facebench.errors import FacebenchError
from facebench.input_spec import INPUT_SIZE

DEGRADE_EXAMPLE = "downscale:24, jpeg:20, blur:2, noise:8, dark:0.4, or steps joined by '+': downscale:24+jpeg:30"


def _downscale(face: np.ndarray, size: float, rng: np.random.Generator) -> np.ndarray:
    side = int(size)
    small = cv2.resize(face, (side, side), interpolation=cv2.INTER_AREA)
    return cv2.resize(small, (face.shape[1], face.shape[0]), interpolation=cv2.INTER_LINEAR)


def _jpeg(face: np.ndarray, quality: float, rng: np.random.Generator) -> np.ndarray:
    bgr = cv2.cvtColor(face, cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".jpg", bgr, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise RuntimeError("OpenCV could not encode a JPEG")
    return cv2.cvtColor(cv2.imdecode(buffer, cv2.IMREAD_COLOR), cv2.COLOR_BGR2RGB)


def _blur(face: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    kernel = 2 * math.ceil(3 * sigma) + 1
    return cv2.GaussianBlur(face, (kernel, kernel), sigmaX=sigma, sigmaY=sigma, borderType=cv2.BORDER_REFLECT_101)


def _noise(face: np.ndarray, sigma: float, rng: np.random.Generator) -> np.ndarray:
    noisy = face.astype(np.float32) + rng.normal(0.0, sigma, face.shape).astype(np.float32)
    return np.clip(np.rint(noisy), 0, 255).astype(np.uint8)


def _dark(face: np.ndarray, factor: float, rng: np.random.Generator) -> np.ndarray:
    return np.clip(np.rint(face.astype(np.float32) * factor), 0, 255).astype(np.uint8)


@dataclass(frozen=True)
class _StepKind:
    apply: Callable[[np.ndarray, float, np.random.Generator], np.ndarray]
    valid: Callable[[float], bool]
    rule: str  # what the value must be, for the error message
    integer: bool = False


STEPS: dict[str, _StepKind] = {
    "downscale": _StepKind(_downscale, lambda v: 1 <= v <= INPUT_SIZE, f"a face size in px, 1-{INPUT_SIZE}", True),
    "jpeg": _StepKind(_jpeg, lambda v: 1 <= v <= 100, "a JPEG quality, 1-100", True),
    "blur": _StepKind(_blur, lambda v: 0 < v <= 20, "a Gaussian sigma in px, above 0 and at most 20"),
    "noise": _StepKind(_noise, lambda v: 0 < v <= 128, "a noise sigma in intensity levels, above 0 and at most 128"),
    "dark": _StepKind(_dark, lambda v: 0 < v <= 1, "a brightness factor, above 0 and at most 1"),
}


@dataclass(frozen=True)
class Degradation:
    """A parsed recipe: its canonical spec (e.g. ``downscale:24+jpeg:20``), its steps and the noise seed."""

    spec: str
    steps: tuple[tuple[str, float], ...]
    seed: int = 0

    def __call__(self, face: np.ndarray, image: str | bytes) -> np.ndarray:
        """The degraded copy of one aligned uint8 RGB face; ``image`` (its path or bytes) seeds its noise."""
        key = zlib.crc32(image if isinstance(image, bytes) else str(image).encode())
        rng = np.random.default_rng([self.seed, key])
        for name, value in self.steps:
            face = STEPS[name].apply(face, value, rng)
        return np.ascontiguousarray(face)

    def describe(self) -> dict[str, object]:
        """What verify.json records of it."""
        return {"spec": self.spec, "seed": self.seed, "applied_to": "the probe's aligned 112x112 crop"}


def parse_degradation(spec: str, seed: int = 0, option: str = "--degrade") -> Degradation:
    """``downscale:24+jpeg:20`` -> Degradation; a bad step -> FacebenchError naming it and the valid form."""
    steps: list[tuple[str, float]] = []
    for part in spec.split("+"):
        name, sep, text = part.strip().partition(":")
        kind = STEPS.get(name)
        if kind is None or not sep:
            raise FacebenchError(f"{option} {spec!r}: step {part!r} is not one of {', '.join(STEPS)} with a value "
                                 f"(e.g. {DEGRADE_EXAMPLE})")
        try:
            value = float(text)
        except ValueError:
            value = math.nan
        if not (math.isfinite(value) and kind.valid(value)) or (kind.integer and value != int(value)):
            raise FacebenchError(f"{option} {spec!r}: {name} takes {kind.rule}"
                                 f"{' (a whole number)' if kind.integer else ''}, not {text!r}")
        steps.append((name, value))
    canonical = "+".join(f"{name}:{value:g}" for name, value in steps)
    return Degradation(canonical, tuple(steps), seed)


def degraded_name(name: str, degrade: Degradation | None) -> str:
    """A result row's set name: the set's own, or ``NAME@RECIPE`` for its degraded copy."""
    return name if degrade is None else f"{name}@{degrade.spec}"
