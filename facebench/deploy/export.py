"""``facebench export``: a torch model to ONNX or OpenVINO IR, fp32/fp16 or int8, checked on the spot.

- **ONNX** by torch's TorchScript exporter (``dynamo=False``: one self-contained file, no
  onnxscript dependency, opset ``OPSET``) with a dynamic batch axis; fp16 traces the
  model in half precision, so the file's input and weights are fp16.
- **int8** (static) by ONNX Runtime's quantisation tools: shape pre-processing, then
  ``quantize_static`` in QDQ format, per-channel int8 weights, uint8 activations, MinMax
  ranges from calibration images (a few hundred training faces, never evaluation pairs).
  A QDQ file is standard ONNX: ONNX Runtime and OpenVINO both run it in int8.
  ``int8-dynamic``: ``quantize_dynamic`` (int8 weights, activations quantised per batch at
  run time; no calibration).
- **OpenVINO IR** (.xml + .bin) by ``openvino.convert_model`` of that ONNX file; fp16
  stores fp16 weights (``compress_to_fp16``).

The self-check embeds real aligned faces (``check`` images, else the calibration images,
else random input, said so) with the torch model in fp32 and with the written file in its
runtime and compares the L2-normalised embeddings; outside ``TOLERANCES`` the export fails
and nothing is left behind. The sidecar (``facebench.deploy.sidecar``) is written last.
"""

from __future__ import annotations

import copy
import os
import shutil
import tempfile
import warnings
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from facebench.choices import EXPORT_FORMATS, EXPORT_PRECISIONS, QUANTIZE
from facebench.deploy.runtimes import DeployedModel, require_runtime
from facebench.deploy.sidecar import sidecar_path, write_sidecar
from facebench.errors import FacebenchError
from facebench.fileio import no_space_as_error
from facebench.input_spec import InputSpec, model_input_spec

OPSET = 17
FORMATS = dict(zip(EXPORT_FORMATS, (".onnx", ".xml"), strict=True))
# self-check limits, per precision of the written file: max |difference| of L2-normalised embeddings
# for float files; min cosine similarity for int8, whose per-component error is larger by design
TOLERANCES = {"fp32": ("max_abs_diff", 1e-4), "fp16": ("max_abs_diff", 1e-2), "int8": ("min_cosine", 0.95)}
CHECK_IMAGES = 64  # faces the self-check embeds at most
INPUT_NAME, OUTPUT_NAME = "input", "embedding"


@dataclass
class ExportRequest:
    """What to export and how; ``source`` (spec, weights, sha256, model) goes into the sidecar."""

    model: nn.Module
    out: Path
    source: dict[str, Any]
    format: str = "onnx"
    precision: str = "fp32"
    quantize: str = "none"
    calib: list[Path] = field(default_factory=list)  # calibration images (int8 static)
    check: list[Path] = field(default_factory=list)  # self-check images
    align: str = "center"


@dataclass
class ExportResult:
    """The files written and the self-check's figures."""

    files: list[Path]
    sidecar: Path
    check: dict[str, Any]


def output_precision(request: ExportRequest) -> str:
    """The precision the written file runs in: int8 when quantised, else ``request.precision``."""
    return "int8" if request.quantize != "none" else request.precision


def check_export_options(out: Path, format: str, precision: str, quantize: str, calib: bool) -> None:
    """Refuse an impossible combination in one line, before any work (``calib``: calibration images given)."""
    if format not in FORMATS:
        raise FacebenchError(f"--format {format!r} is not one of: {', '.join(FORMATS)}")
    if out.suffix.lower() != FORMATS[format]:
        raise FacebenchError(f"--out {out}: a {format} file ends in {FORMATS[format]}")
    if precision not in EXPORT_PRECISIONS:
        raise FacebenchError(f"--precision {precision!r}: export writes {', '.join(EXPORT_PRECISIONS)} "
                             "(bf16 runs in torch: verify/profile --precision bf16)")  # fmt: skip
    if quantize not in QUANTIZE:
        raise FacebenchError(f"--quantize {quantize!r} is not one of: {', '.join(QUANTIZE)}")
    if quantize != "none" and precision != "fp32":
        raise FacebenchError(f"--quantize {quantize} starts from fp32; drop --precision {precision}")
    if quantize == "int8" and not calib:
        raise FacebenchError("--quantize int8 needs --calib DIR: a few hundred training images (never the "
                             "evaluation pairs); or use --quantize int8-dynamic")  # fmt: skip
    if quantize == "int8-dynamic" and format != "onnx":
        raise FacebenchError("--quantize int8-dynamic writes ONNX only (OpenVINO has no dynamic int8 conv)")
    if out.is_dir():
        raise FacebenchError(f"--out {out}: is a folder; give the file to write")
    require_runtime("onnxruntime")  # the exporter checks the ONNX file with it, and quantises with it
    if format == "openvino":
        require_runtime("openvino")


def sample_images(folder: Path, count: int, option: str) -> list[Path]:
    """``count`` images of ``folder`` (any depth), evenly spaced over the sorted list so every identity
    folder has its share; FacebenchError when it holds none."""
    from facebench.data.images import IMAGE_SUFFIXES

    if not folder.is_dir():
        raise FacebenchError(f"{option} {folder}: not a folder of images")
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    if not files:
        raise FacebenchError(f"{option} {folder}: holds no images ({', '.join(IMAGE_SUFFIXES)})")
    if len(files) <= count:
        return files
    return [files[int(i)] for i in np.linspace(0, len(files) - 1, count).round()]


def face_batch(images: list[Path], spec: InputSpec, align: str) -> torch.Tensor:
    """The images decoded, aligned by ``align`` and normalised by ``spec``: one (N, 3, S, S) batch."""
    from facebench.data import load_face

    return spec.to_tensor(np.stack([load_face(str(path), align) for path in images]))


def export_model(request: ExportRequest) -> ExportResult:
    """Write the request's file (and companions) and sidecar after a passing self-check (module docstring)."""
    check_export_options(request.out, request.format, request.precision, request.quantize, bool(request.calib))
    model = copy.deepcopy(request.model).eval().cpu().float()  # the caller's model keeps its device and dtype
    spec = model_input_spec(model)
    out = request.out
    out.parent.mkdir(parents=True, exist_ok=True)
    with no_space_as_error(out):  # a full disk while exporting: one line, nothing left behind
        work = Path(tempfile.mkdtemp(prefix=f".{out.stem}.", dir=out.parent))
        try:
            onnx_file = work / f"{out.stem}.onnx"
            _to_onnx(model, onnx_file, spec, half=request.precision == "fp16" and request.format == "onnx")
            if request.quantize == "int8":
                calib = face_batch(request.calib, spec, request.align)
                onnx_file = _quantize_static(onnx_file, work, calib)
            elif request.quantize == "int8-dynamic":
                onnx_file = _quantize_dynamic(onnx_file, work)
            written = onnx_file
            if request.format == "openvino":
                written = _to_openvino(onnx_file, work / out.name, compress_to_fp16=request.precision == "fp16")
            check_images = request.check or request.calib
            check = self_check(model, written, "openvino" if request.format == "openvino" else "onnxruntime",
                               output_precision(request), check_images[:CHECK_IMAGES], request.align)  # fmt: skip
            files = _move_into_place(written, out)
        finally:
            shutil.rmtree(work, ignore_errors=True)
    embedding_size = int(check.pop("embedding_size"))
    fields = sidecar_fields(request, spec, embedding_size, check)
    return ExportResult(files, write_sidecar(out, fields), check)


def sidecar_fields(request: ExportRequest, spec: InputSpec, embedding_size: int,
                   check: dict[str, Any]) -> dict[str, Any]:  # fmt: skip
    """What the sidecar records (facebench.deploy.sidecar)."""
    import facebench

    library = require_runtime("onnxruntime")
    quantization = None
    if request.quantize != "none":
        quantization = {"method": request.quantize, "library": f"onnxruntime {library.__version__}",
                        "format": "QDQ, per-channel int8 weights, uint8 activations" if request.quantize == "int8"
                        else "dynamic: int8 weights, activations quantised per batch at run time",
                        "calibration": {"images": len(request.calib), "align": request.align, "ranges": "MinMax",
                                        "first": str(request.calib[0]) if request.calib else None}}  # fmt: skip
    return {
        "format": request.format,
        "precision": output_precision(request),
        "quantization": quantization,
        "input": spec.to_dict(),
        "input_name": INPUT_NAME,
        "batch_axis": "dynamic",
        "embedding_size": embedding_size,
        "opset": OPSET,
        "source": request.source,
        "untrained": bool(request.source.get("untrained")),  # seeded random weights (export --untrained): not for use
        "facebench_version": facebench.__version__,
        "torch_version": torch.__version__,
        "self_check": check,
    }


def self_check(model: nn.Module, path: Path, runtime: str, precision: str, images: list[Path],
               align: str) -> dict[str, Any]:  # fmt: skip
    """Embed ``images`` (random input when empty) with ``model`` in fp32 and with ``path``; FacebenchError when
    the L2-normalised embeddings differ beyond TOLERANCES[precision]. Returns the figures (and embedding_size)."""
    spec = model_input_spec(model)
    if images:
        x, what = face_batch(images, spec, align), f"{len(images)} aligned faces (align {align})"
    else:
        generator = torch.Generator().manual_seed(0)
        x, what = torch.rand(8, 3, spec.size, spec.size, generator=generator) * 2 - 1, "8 random inputs (no images given)"
    with torch.inference_mode():
        reference = torch.nn.functional.normalize(model(x).float(), dim=1)
        deployed = DeployedModel(path, runtime, spec, precision=precision)
        embedded = torch.nn.functional.normalize(deployed(x), dim=1)
    max_abs = float((reference - embedded).abs().max())
    min_cos = float((reference * embedded).sum(1).min())
    measure, limit = TOLERANCES[precision]
    value = max_abs if measure == "max_abs_diff" else min_cos
    passed = value <= limit if measure == "max_abs_diff" else value >= limit
    check = {"images": what, "runtime": f"{runtime} {deployed.version}", "max_abs_diff": max_abs,
             "min_cosine": min_cos, "criterion": f"{measure} {'<=' if measure == 'max_abs_diff' else '>='} {limit:g}",
             "passed": passed, "embedding_size": int(embedded.shape[1])}  # fmt: skip
    if not passed:
        raise SelfCheckFailed(f"self-check failed: {runtime} and torch embeddings of {what} differ "
                              f"(max abs {max_abs:.3g}, min cosine {min_cos:.4f}; needs {check['criterion']}); "
                              "nothing written")  # fmt: skip
    return check


class SelfCheckFailed(FacebenchError):
    """The exported file does not reproduce the torch model (the CLI exits 1: the export is wrong, not the input)."""

    exit_code = 1


def _to_onnx(model: nn.Module, path: Path, spec: InputSpec, *, half: bool) -> None:
    traced = copy.deepcopy(model).half() if half else model
    dummy = torch.zeros(2, 3, spec.size, spec.size, dtype=torch.float16 if half else torch.float32)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation notice
        torch.onnx.export(traced, (dummy,), str(path), input_names=[INPUT_NAME], output_names=[OUTPUT_NAME],
                          dynamic_axes={INPUT_NAME: {0: "batch"}, OUTPUT_NAME: {0: "batch"}}, opset_version=OPSET,
                          dynamo=False)  # fmt: skip


def _quantize_static(fp32_file: Path, work: Path, calib: torch.Tensor) -> Path:
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )
    from onnxruntime.quantization.shape_inference import quant_pre_process

    class Batches(CalibrationDataReader):
        def __init__(self) -> None:
            self.batches = iter(calib.numpy()[i : i + 16] for i in range(0, len(calib), 16))

        def get_next(self) -> dict[str, np.ndarray] | None:
            batch = next(self.batches, None)
            return None if batch is None else {INPUT_NAME: batch}

    prepared, quantized = work / "prepared.onnx", work / f"{fp32_file.stem}.int8.onnx"
    quant_pre_process(str(fp32_file), str(prepared))
    quantize_static(str(prepared), str(quantized), Batches(), quant_format=QuantFormat.QDQ, per_channel=True,
                    activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                    calibrate_method=CalibrationMethod.MinMax)  # fmt: skip
    return quantized


def _quantize_dynamic(fp32_file: Path, work: Path) -> Path:
    from onnxruntime.quantization import QuantType, quantize_dynamic
    from onnxruntime.quantization.shape_inference import quant_pre_process

    prepared, quantized = work / "prepared.onnx", work / f"{fp32_file.stem}.int8-dynamic.onnx"
    quant_pre_process(str(fp32_file), str(prepared))
    quantize_dynamic(str(prepared), str(quantized), weight_type=QuantType.QInt8)
    return quantized


def _to_openvino(onnx_file: Path, xml: Path, *, compress_to_fp16: bool) -> Path:
    ov = require_runtime("openvino")
    ov.save_model(ov.convert_model(str(onnx_file)), str(xml), compress_to_fp16=compress_to_fp16)
    return xml


def _move_into_place(written: Path, out: Path) -> list[Path]:
    """Rename the file (and an IR's .bin, which the .xml finds by its stem) onto ``out``, each rename atomic;
    the old sidecar goes first, so a sidecar never describes another file."""
    sidecar_path(out).unlink(missing_ok=True)
    moves = [(written, out)]
    if written.suffix == ".xml":
        moves.append((written.with_suffix(".bin"), out.with_suffix(".bin")))
    for source, target in moves:
        os.replace(source, target)
    return [target for _, target in moves]
