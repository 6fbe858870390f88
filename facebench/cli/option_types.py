"""Option value types and checks that Click applies while it parses, before a command imports torch.

Closed sets are ``Literal`` types (Typer makes them Click choices: listed in --help, anything else refused
with exit code 2); counts use ``min=``/``max=`` where they are declared; the callbacks here cover the rest
(finite floats, ``--device``).
"""

from __future__ import annotations

import math
import re
from typing import Literal

import typer

from facebench.choices import (
    ALIGN_CHOICES,
    ALIGN_DETECTORS,
    AUGMENTS,
    BENCH_PRESETS,
    DETECTOR_NAMES,
    DEVICE_CHOICES,
    EXPORT_FORMATS,
    EXPORT_PRECISIONS,
    PAIR_FORMATS,
    PRECISION_CHOICES,
    QUANTIZE,
    RUNTIMES,
)

# Literal[TUPLE] is Literal[each value of TUPLE]
Align = Literal[ALIGN_CHOICES]
AlignDetector = Literal[ALIGN_DETECTORS]
Augment = Literal[AUGMENTS]
BenchPreset = Literal[BENCH_PRESETS]
Detector = Literal[DETECTOR_NAMES]
ExportFormat = Literal[EXPORT_FORMATS]
ExportPrecision = Literal[EXPORT_PRECISIONS]
PairFormat = Literal[PAIR_FORMATS]
Precision = Literal[PRECISION_CHOICES]
Quantize = Literal[QUANTIZE]
Runtime = Literal[RUNTIMES]

DEVICE_METAVAR = f"<{'|'.join(DEVICE_CHOICES)}|cuda:N>"
_DEVICE = re.compile("|".join(DEVICE_CHOICES) + r"|cuda:\d+")


def check_device(value: str | None) -> str | None:
    """``--device``: auto, cpu, cuda or cuda:N (None: not given); whether that GPU exists is checked later."""
    if value is not None and not _DEVICE.fullmatch(value):
        raise typer.BadParameter(f"{value!r} is not one of {', '.join(DEVICE_CHOICES)}, cuda:N (e.g. cuda:0)")
    return value


def positive(value: float | None) -> float | None:
    """A float option that must be finite and above 0 (None: not given)."""
    if value is not None and not (math.isfinite(value) and value > 0):
        raise typer.BadParameter(f"{value} is not a finite number above 0")
    return value


def non_negative(value: float | None) -> float | None:
    """A float option that must be finite and at least 0 (None: not given)."""
    if value is not None and not (math.isfinite(value) and value >= 0):
        raise typer.BadParameter(f"{value} is not a finite number of 0 or more")
    return value
