"""``facebench export``: a model to ONNX or OpenVINO IR (fp32, fp16, int8), with a sidecar and a self-check."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.model_options import WeightsOption, model_options
from facebench.cli.option_types import Align, ExportFormat, ExportPrecision, Quantize

CALIB_IMAGES = 300  # calibration faces sampled from --calib by default


@command("export")
def export(
    model: str = typer.Option(..., "--model", help="Zoo name with --weights FILE, run folder or checkpoint .pt."),
    weights: WeightsOption = None,
    format: ExportFormat = typer.Option("onnx", "--format", help="openvino: IR .xml + .bin."),
    precision: ExportPrecision = typer.Option("fp32", help="Weights and input of the file."),
    quantize: Quantize = typer.Option("none", help="int8: static, ONNX Runtime QDQ, needs --calib; "
                                      "int8-dynamic: ONNX only."),
    calib: Path | None = typer.Option(None, help="Folder of training images (any depth) to calibrate int8 ranges "
                                      "on; never the evaluation pairs' images."),
    calib_images: int = typer.Option(CALIB_IMAGES, min=1, help="Calibration images taken from --calib, evenly "
                                     "spread over its sorted files."),
    check: Path | None = typer.Option(None, help="Folder of face images for the self-check.",
                                      show_default="the calibration images; random input when neither is given"),
    align: Align = typer.Option("center", help="How --calib/--check images are cropped (none: already 112x112 "
                                "aligned)."),
    out: Path = typer.Option(..., "--out", help="The file to write: .onnx, or .xml for openvino; its sidecar goes "
                             "beside it as FILE.json."),
    untrained: bool = typer.Option(False, "--untrained", help="Export a zoo name without --weights anyway: seeded "
                                   "random weights, recorded as untrained in the sidecar (for timing, not for use)."),
) -> None:
    """Export a model for deployment and check that the file reproduces it.

    The file has a dynamic batch axis; its sidecar (FILE.json) records the input size,
    normalisation and channel order, embedding size, source and its SHA-256, and the
    self-check. Embeddings of real faces from the file's runtime and from torch (fp32) must
    agree (fp32: max abs difference <= 1e-4 after L2 normalisation; fp16 <= 1e-2; int8: min
    cosine >= 0.95), else exit 1 with nothing written.
    """
    from facebench.allocator import tune_allocator
    from facebench.data.images import check_align
    from facebench.deploy import is_deployed_file
    from facebench.deploy.export import CHECK_IMAGES, ExportRequest, check_export_options, export_model, sample_images
    from facebench.errors import FacebenchError
    from facebench.modelspec import model_recipe
    from facebench.runfolder import file_sha256

    tune_allocator()
    check_align(align)
    check_export_options(out, format, precision, quantize, calib is not None)
    recipe = model_recipe(model, options=model_options(weights))
    if recipe.external or is_deployed_file(recipe.source):
        raise FacebenchError(f"--model {model}: export takes a torch model (zoo name, checkpoint, run folder)")
    if recipe.untrained and not untrained:
        raise FacebenchError(f"--model {model}: a zoo name without --weights is seeded random weights, not a "
                             "deployable model; give --weights FILE, a run folder or a checkpoint (or --untrained "
                             "to export random weights, recorded as untrained)")
    source_file = Path(recipe.source)
    sha256 = recipe.sha256 or (file_sha256(source_file) if source_file.is_file() else None)
    request = ExportRequest(
        recipe.build(), out, {"spec": model, "model": recipe.architecture, "file": recipe.source, "sha256": sha256,
                              "untrained": recipe.untrained},
        format, precision, quantize, align=align,
        calib=sample_images(calib, calib_images, "--calib") if calib else [],
        check=sample_images(check, CHECK_IMAGES, "--check") if check else [],
    )  # fmt: skip
    with console.status(f"exporting {model} to {out}"):
        result = export_model(request)
    c = result.check
    console.print(f"self-check ({c['images']}, {c['runtime']}): max abs difference {c['max_abs_diff']:.2e}, "
                  f"min cosine {c['min_cosine']:.6f} ({c['criterion']}: passed)", highlight=False, soft_wrap=True)
    console.print(f"wrote {', '.join(str(p) for p in [*result.files, result.sidecar])}", highlight=False,
                  soft_wrap=True)  # fmt: skip
