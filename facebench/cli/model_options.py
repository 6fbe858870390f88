"""The options beside a model spec (``--weights``, ``--runtime``, ``--input-*``), declared once for every command.

verify and profile take them as written here; distill takes the teacher's under a
``--teacher-`` prefix. ``model_options`` turns them into ``facebench.modelspec.ModelOptions``
(light: no torch import), refusing a malformed value in one line.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Annotated

import typer

from facebench.cli.option_types import Runtime
from facebench.errors import FacebenchError

if TYPE_CHECKING:
    from facebench.modelspec import ModelOptions

WeightsOption = Annotated[Path | None, typer.Option(
    "--weights", help="Weights for a zoo name: a state dict (e.g. pretrained mfn128) or a facebench checkpoint.")]
RuntimeOption = Annotated[Runtime | None, typer.Option(
    "--runtime", help="The runtime that runs the model.",
    show_default="the file's own: .onnx onnxruntime, .xml openvino; torch otherwise")]
InputSizeOption = Annotated[int | None, typer.Option(
    "--input-size", min=16, max=1024, help="Foreign .onnx/.xml without sidecar: input side in pixels.",
    show_default="112")]
InputMeanOption = Annotated[str | None, typer.Option(
    "--input-mean", help="Foreign .onnx/.xml: mean in pixel units, 1 value or 3 (RGB) comma-separated.",
    show_default="127.5")]
InputStdOption = Annotated[str | None, typer.Option(
    "--input-std", help="Foreign .onnx/.xml: std in pixel units, 1 or 3 values.", show_default="127.5")]
BgrOption = Annotated[bool, typer.Option("--bgr", help="Foreign .onnx/.xml: the network takes BGR channel order.")]


def parse_triple(value: str, option: str) -> tuple[float, float, float]:
    """'127.5' or '123.675,116.28,103.53' -> three floats (per RGB channel); FacebenchError otherwise."""
    try:
        values = [float(v) for v in value.split(",")]
    except ValueError:
        raise FacebenchError(f"{option} {value!r}: give 1 number or 3 comma-separated numbers") from None
    if len(values) not in (1, 3) or any(v != v or abs(v) == float("inf") for v in values):
        raise FacebenchError(f"{option} {value!r}: give 1 finite number or 3 comma-separated ones")
    a, b, c = values if len(values) == 3 else values * 3
    return a, b, c


def model_options(weights: Path | None = None, runtime: str | None = None, input_size: int | None = None,
                  input_mean: str | None = None, input_std: str | None = None, bgr: bool = False) -> ModelOptions:
    """The options above as ``ModelOptions`` (input spec only when an --input-* option was given)."""
    from facebench.input_spec import ARCFACE, InputSpec
    from facebench.modelspec import ModelOptions

    spec = None
    if input_size is not None or input_mean is not None or input_std is not None or bgr:
        mean = parse_triple(input_mean, "--input-mean") if input_mean is not None else ARCFACE.mean
        std = parse_triple(input_std, "--input-std") if input_std is not None else ARCFACE.std
        if min(std) <= 0:
            raise FacebenchError(f"--input-std {input_std}: must be positive")
        spec = InputSpec(input_size or ARCFACE.size, mean, std, bgr)
    return ModelOptions(weights, runtime, spec)
