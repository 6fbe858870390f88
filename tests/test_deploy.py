"""Deployed models: export round trip, sidecar, foreign ONNX with its own input spec, int8, refusals."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
from test_verify_cmd import write_lfw
from torch import nn
from typer.testing import CliRunner

from facebench.checkpoint import save_checkpoint
from facebench.cli import app
from facebench.deploy import load_deployed, read_sidecar
from facebench.deploy.runtimes import require_runtime
from facebench.errors import FacebenchError
from facebench.input_spec import IMAGENET
from facebench.modelspec import model_with_weights, seeded_zoo_model

pytest.importorskip("onnxruntime")


def invoke(*args: str) -> object:
    return CliRunner().invoke(app, list(args))


def verify_row(out: Path) -> dict:
    return json.loads((out / "verify.json").read_text())["rows"][0]


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """mfn128 (seeded random weights) exported to fp32 ONNX, self-checked on the tiny LFW set's faces."""
    root = tmp_path_factory.mktemp("export")
    write_lfw(root / "lfw")
    out = root / "mfn128.onnx"
    result = invoke("export", "--model", "mfn128", "--untrained", "--out", str(out), "--check", str(root / "lfw"))
    assert result.exit_code == 0, result.output
    assert "self-check (12 aligned faces (align center), onnxruntime" in result.output
    return out


def test_sidecar_records_input_source_and_self_check(exported: Path) -> None:
    sidecar = read_sidecar(exported)
    assert sidecar is not None and sidecar["format"] == "onnx" and sidecar["precision"] == "fp32"
    assert sidecar["input"] == IMAGENET.to_dict() and sidecar["embedding_size"] == 128
    assert sidecar["source"]["spec"] == "mfn128" and sidecar["source"]["untrained"] is True
    assert sidecar["untrained"] is True  # export --untrained: recorded as random weights, not for use
    assert sidecar["batch_axis"] == "dynamic" and sidecar["quantization"] is None
    check = sidecar["self_check"]
    assert check["passed"] and check["max_abs_diff"] <= 1e-4 and check["criterion"] == "max_abs_diff <= 0.0001"


def test_exported_file_has_a_dynamic_batch_and_matches_torch(exported: Path) -> None:
    model = load_deployed(exported)
    reference = seeded_zoo_model("mfn128")
    for batch in (1, 5):
        x = torch.randn(batch, 3, 112, 112)
        with torch.inference_mode():
            assert torch.allclose(model(x), reference(x), atol=1e-4)


def test_verify_of_the_export_equals_verify_in_torch(exported: Path, tmp_path: Path) -> None:
    pairs = write_lfw(tmp_path / "lfw")
    common = ["--pairs", str(pairs), "--device", "cpu", "--batch-size", "5"]
    assert invoke("verify", "--model", "mfn128", *common, "--out", str(tmp_path / "torch")).exit_code == 0
    result = invoke("verify", "--model", str(exported), *common, "--out", str(tmp_path / "onnx"))
    assert result.exit_code == 0, result.output
    torch_row, onnx_row = verify_row(tmp_path / "torch"), verify_row(tmp_path / "onnx")
    assert onnx_row["accuracy"] == torch_row["accuracy"]
    assert onnx_row["threshold_sq_l2"] == pytest.approx(torch_row["threshold_sq_l2"], abs=0.011)
    assert (onnx_row["runtime"], onnx_row["precision"]) == ("onnxruntime", "fp32")
    assert onnx_row["model"] == "mfn128.onnx (onnxruntime fp32)"
    assert onnx_row["input"] == IMAGENET.describe()


class _Bgr64(nn.Module):
    """A foreign face model: 64x64 BGR input in [0, 1] (mean 0, std 255), embedding = mean colour per channel."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([x.mean(dim=(2, 3)), x[:, :, :8, :8].mean(dim=(2, 3))], dim=1)


@pytest.mark.filterwarnings("ignore::DeprecationWarning")  # torch's notice about its TorchScript exporter
def test_foreign_onnx_takes_the_users_input_spec(tmp_path: Path) -> None:
    foreign = tmp_path / "foreign.onnx"
    torch.onnx.export(_Bgr64(), (torch.zeros(1, 3, 64, 64),), str(foreign), input_names=["x"],
                      dynamic_axes={"x": {0: "n"}}, dynamo=False)  # fmt: skip
    pairs = write_lfw(tmp_path / "lfw")
    common = ["verify", "--model", str(foreign), "--pairs", str(pairs), "--no-flip", "--out", str(tmp_path / "out")]
    wrong = invoke(*common)
    assert wrong.exit_code == 2 and "not (N, 3, 112, 112); give --input-size 64" in wrong.output
    assert not (tmp_path / "out").exists()
    right = invoke(*common, "--input-size", "64", "--input-mean", "0", "--input-std", "255", "--bgr")
    assert right.exit_code == 0, right.output
    assert verify_row(tmp_path / "out")["input"] == "64x64 BGR, mean 0, std 255"
    # the same spec through the module directly: channel 0 of the output is the image's mean blue
    model = load_deployed(foreign, input_spec=load_deployed(foreign).input_spec.__class__(64, (0, 0, 0),
                                                                                           (255, 255, 255), True))
    image = np.zeros((112, 112, 3), dtype=np.uint8)
    image[..., 2] = 255  # blue in RGB order
    out = model(model.input_spec.to_tensor(image)[None])
    assert out[0, :3].tolist() == pytest.approx([1.0, 0.0, 0.0], abs=1e-6)


def test_int8_export_stays_within_its_stated_tolerance(tmp_path: Path) -> None:
    write_lfw(tmp_path / "lfw")
    out = tmp_path / "mfn128-int8.onnx"
    result = invoke("export", "--model", "mfn128", "--untrained", "--quantize", "int8", "--calib",
                    str(tmp_path / "lfw"), "--out", str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    sidecar = read_sidecar(out)
    assert sidecar["precision"] == "int8" and sidecar["quantization"]["calibration"]["images"] == 12
    assert sidecar["self_check"]["min_cosine"] >= 0.95 and sidecar["self_check"]["criterion"] == "min_cosine >= 0.95"
    x = torch.randn(4, 3, 112, 112)
    with torch.inference_mode():
        cos = nn.functional.cosine_similarity(load_deployed(out)(x), seeded_zoo_model("mfn128")(x))
    assert float(cos.min()) >= 0.95


def test_openvino_ir_export_runs_in_openvino(tmp_path: Path) -> None:
    pytest.importorskip("openvino")
    out = tmp_path / "mfn128.xml"
    result = invoke("export", "--model", "mfn128", "--untrained", "--format", "openvino", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert out.is_file() and out.with_suffix(".bin").is_file() and read_sidecar(out)["format"] == "openvino"
    assert load_deployed(out).runtime == "openvino"
    onnx_by_openvino = invoke("profile", "--models", str(out), "--runtime", "onnxruntime", "--out", str(tmp_path))
    assert onnx_by_openvino.exit_code == 2 and "use --runtime openvino" in onnx_by_openvino.output


def test_failed_self_check_exits_1_and_writes_nothing(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from facebench.deploy import export

    monkeypatch.setitem(export.TOLERANCES, "fp32", ("max_abs_diff", -1.0))
    out = tmp_path / "m.onnx"
    result = invoke("export", "--model", "mfn128", "--untrained", "--out", str(out))
    assert result.exit_code == 1 and "self-check failed" in result.output
    assert list(tmp_path.iterdir()) == []


def test_weights_that_do_not_fit_are_refused_naming_the_keys(tmp_path: Path) -> None:
    state = seeded_zoo_model("mfn128").state_dict()
    state["extra.weight"] = state.pop("conv3.bias")
    state["bn.weight"] = torch.zeros(7)
    bad = tmp_path / "bad.pt"
    torch.save(state, bad)
    result = invoke("profile", "--models", "mfn128", "--weights", str(bad), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    message = " ".join(result.output.split())
    assert "missing (1): conv3.bias" in message and "unexpected (1): extra.weight" in message
    assert "shape differs (1): bn.weight (7,) vs (128,)" in message


def test_weights_come_from_a_state_dict_or_a_checkpoint(tmp_path: Path) -> None:
    model = seeded_zoo_model("mbf")
    nn.init.constant_(model.head[-1].bias, 0.25)
    torch.save(model.state_dict(), tmp_path / "plain.pt")
    save_checkpoint(tmp_path / "ckpt.pt", model, model_name="mbf", embedding_size=512, config={})
    for name in ("plain.pt", "ckpt.pt"):
        loaded = model_with_weights("mbf", tmp_path / name)
        assert torch.equal(loaded.head[-1].bias, model.head[-1].bias)


def test_options_that_do_not_apply_are_refused(exported: Path, tmp_path: Path) -> None:
    base = ["profile", "--out", str(tmp_path)]
    cases = [
        (["--models", str(exported), "--weights", str(exported)], "--weights goes with a zoo name"),
        (["--models", "mfn128", "--runtime", "onnxruntime"], "export mfn128 first"),
        (["--models", "mfn128", "--input-size", "96"], "mfn128 brings its own input spec"),
        (["--models", str(exported), "--input-std", "1"], "its sidecar mfn128.onnx.json says the input is"),
        (["--models", str(exported), "--runtime", "torch"], "--runtime torch cannot run mfn128.onnx"),
        (["--models", str(exported), "--precision", "bf16"], "runs in its own precision"),
        (["--models", "mfn128", "--input-mean", "1,2"], "--input-mean '1,2': give 1 finite number or 3"),
    ]
    for args, message in cases:
        result = invoke(*base, *args)
        assert result.exit_code == 2 and message in " ".join(result.output.split()), (args, result.output)


def test_missing_runtime_names_its_extra(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "openvino", None)  # import openvino -> ImportError, as when not installed
    with pytest.raises(FacebenchError, match=r"^--runtime openvino needs the optional extra: pip install "
                                             r"'facebench\[openvino\]'$"):  # fmt: skip
        require_runtime("openvino")


def test_report_lists_a_pretrained_verification_as_a_row(tmp_path: Path) -> None:
    weights = tmp_path / "w.pt"
    torch.save(seeded_zoo_model("mfn128").state_dict(), weights)
    pairs = write_lfw(tmp_path / "lfw")
    out = tmp_path / "runs" / "mfn128-pretrained"
    result = invoke("verify", "--model", "mfn128", "--weights", str(weights), "--pairs", f"lfw={pairs}", "--out",
                    str(out))  # fmt: skip
    assert result.exit_code == 0, result.output
    meta = json.loads((out / "verify.json").read_text())["meta"]
    assert meta["pretrained"] is True and meta["external"] is False and meta["model_source"] == str(weights)
    report = invoke("report", "--runs", str(tmp_path / "runs"), "--out", str(tmp_path / "report"))
    assert report.exit_code == 0, report.output
    table = (tmp_path / "report" / "table1.csv").read_text()
    assert "mfn128" in table and str(out) in table
