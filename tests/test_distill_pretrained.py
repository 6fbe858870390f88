"""Distillation from pretrained teachers: a zoo name with --teacher-weights, and an exported .onnx file."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch
from train_helpers import TINY, make_faces
from typer.testing import CliRunner

from facebench.cli import app
from facebench.distill.teacher import DeployedTeacher, ZooTeacher, resolve_teacher
from facebench.fileio import read_json
from facebench.input_spec import ARCFACE, IMAGENET
from facebench.modelspec import ModelOptions, seeded_zoo_model
from facebench.runfolder import CONFIG, file_sha256
from facebench.train.engine import Step


def distill(faces: Path, out: Path, *teacher: str, method: str = "emb") -> object:
    return CliRunner().invoke(app, ["distill", *teacher, "--student", TINY, "--method", method, "--data", str(faces),
                                    "--epochs", "1", "--batch-size", "16", "--workers", "0", "--threads", "1",
                                    "--embedding-size", "16", "--out", str(out)])  # fmt: skip


def test_zoo_teacher_with_weights_sees_the_student_batch_in_its_own_normalisation(weights: Path) -> None:
    teacher = resolve_teacher("mfn128", options=ModelOptions(weights=weights))
    assert isinstance(teacher, ZooTeacher) and teacher.embedding_size == 128 and teacher.num_classes is None
    assert teacher.sha256 == file_sha256(weights) and teacher.without_logits == ""  # kd fits a head on it
    images = torch.randint(0, 256, (4, 112, 112, 3), dtype=torch.uint8).numpy()
    teacher.student_spec = ARCFACE
    step = Step(ARCFACE.to_tensor(images), torch.zeros(4, dtype=torch.long), torch.arange(4), {}, step=0, epoch=0)
    got = teacher.outputs(step, ("embedding", "features"))
    with torch.inference_mode():
        reference = seeded_zoo_model("mfn128")(IMAGENET.to_tensor(images))  # the teacher's own normalisation
    assert torch.allclose(got.embedding, reference, atol=1e-4)
    assert got.features.shape == (4, 512, 7, 7)


def test_distill_from_pretrained_weights_records_the_weights(weights: Path, tmp_path: Path) -> None:
    faces = make_faces(tmp_path / "faces")
    result = distill(faces, tmp_path / "emb", "--teacher", "mfn128", "--teacher-weights", str(weights))
    assert result.exit_code == 0, result.output
    config = read_json(tmp_path / "emb" / CONFIG)
    assert config["teacher"]["model"] == "mfn128" and config["teacher"]["sha256"] == file_sha256(weights)
    assert config["config"]["teacher_weights"] == str(weights) and config["config"]["emb_loss"] == "relational"
    assert "fitted_head" not in config["teacher"]  # only kd fits one (tests/test_distill_fitted_head.py)


def test_distill_from_an_onnx_teacher(weights: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "teacher.onnx"
    exported = CliRunner().invoke(app, ["export", "--model", "mfn128", "--weights", str(weights), "--out", str(onnx)])
    assert exported.exit_code == 0, exported.output
    teacher = resolve_teacher(str(onnx))
    assert isinstance(teacher, DeployedTeacher) and teacher.embedding_size == 128
    faces = make_faces(tmp_path / "faces")
    result = distill(faces, tmp_path / "emb", "--teacher", str(onnx))
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "emb" / CONFIG)["teacher"]["sha256"] == file_sha256(onnx)
    adv = distill(faces, tmp_path / "adv", "--teacher", str(onnx), method="adv")
    assert adv.exit_code == 2 and "feature maps are not exposed" in adv.output
