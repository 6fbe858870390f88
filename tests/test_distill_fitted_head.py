"""kd from pretrained teachers: a margin head fitted on the frozen teacher's embeddings of the training set."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from external_helpers import COLOUR, register_colour
from test_distill_pretrained import distill
from train_helpers import TINY, make_faces, tiny_spec
from typer.testing import CliRunner

import facebench.distill.fitted_head
from facebench.cli import app
from facebench.data.loaders import open_dataset
from facebench.distill.teacher import HEAD_MODULE, Teacher, resolve_teacher
from facebench.fileio import read_json
from facebench.input_spec import ARCFACE, IMAGENET
from facebench.models.registry import _REGISTRY
from facebench.modelspec import ModelOptions, seeded_zoo_model
from facebench.runfolder import CONFIG
from facebench.train.engine import Step


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache"


@pytest.fixture
def faces(tmp_path: Path) -> Path:
    return make_faces(tmp_path / "faces")


def test_fitted_head_gives_scaled_cosines_of_the_teachers_own_embeddings(weights: Path, faces: Path) -> None:
    teacher = resolve_teacher("mfn128", options=ModelOptions(weights=weights))
    dataset = open_dataset(str(faces), train=True, input_spec=ARCFACE)  # flips: the fit must not see them
    teacher.fit_head(dataset)
    assert teacher.num_classes == 4 and set(teacher.modules()) == {"teacher", HEAD_MODULE}
    images = np.stack([cv2.imread(str(f))[:, :, ::-1] for f in dataset.folders.files])  # RGB, as stored
    labels = torch.tensor(dataset.folders.labels)
    with torch.inference_mode():
        reference = seeded_zoo_model("mfn128")(IMAGENET.to_tensor(images))  # mfn128's own normalisation
    weight = teacher.head.fc.weight.detach()
    expected = 64.0 * F.normalize(reference, dim=1) @ F.normalize(weight, dim=1).T
    step = Step(ARCFACE.to_tensor(images), labels, torch.arange(len(labels)), {}, step=0, epoch=0)
    got = teacher.outputs(step, ("logits",)).logits
    assert torch.allclose(got, expected, atol=1e-3)
    record = teacher.record()["fitted_head"]
    accuracy = (expected.argmax(dim=1) == labels).float().mean().item()
    assert record["train_accuracy"] == pytest.approx(accuracy) and record["images"] == 32
    assert record["classes"] == 4 and record["train_accuracy"] >= facebench.distill.fitted_head.MIN_TRAIN_ACCURACY


def test_a_second_fit_reads_the_embeddings_from_disk_and_a_changed_set_misses(
    weights: Path, faces: Path, cache: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def teacher(embeds: bool) -> Teacher:
        made = resolve_teacher("mfn128", options=ModelOptions(weights=weights))
        if not embeds:
            monkeypatch.setattr(made, "embed_dataset", lambda dataset: pytest.fail("embedded despite the cache"))
        made.fit_head(open_dataset(str(faces), train=True))
        return made

    first = teacher(embeds=True)
    assert len(list(cache.rglob("*.npz"))) == 1
    second = teacher(embeds=False)
    assert torch.equal(second.head.fc.weight, first.head.fc.weight) and second.fitted_head == first.fitted_head
    cv2.imwrite(str(faces / "id0" / "extra.png"), np.zeros((112, 112, 3), np.uint8))
    assert teacher(embeds=True).fitted_head["images"] == 33 and len(list(cache.rglob("*.npz"))) == 2


def test_cli_kd_from_pretrained_weights_records_the_fitted_head(weights: Path, faces: Path, tmp_path: Path) -> None:
    result = distill(faces, tmp_path / "kd", "--teacher", "mfn128", "--teacher-weights", str(weights), method="kd")
    assert result.exit_code == 0, result.output
    record = read_json(tmp_path / "kd" / CONFIG)["teacher"]
    assert record["num_classes"] == 4 and record["fitted_head"]["classes"] == 4
    assert {"epochs", "lr", "optimizer", "seed", "train_accuracy"} <= set(record["fitted_head"])
    metrics = (tmp_path / "kd" / "metrics.csv").read_text().splitlines()
    assert "loss_kd" in metrics[0] and len(metrics) > 1


def test_kd_is_refused_when_the_fitted_head_is_too_weak(
    weights: Path, faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(facebench.distill.fitted_head, "MIN_TRAIN_ACCURACY", 1.01)
    result = distill(faces, tmp_path / "kd", "--teacher", "mfn128", "--teacher-weights", str(weights), method="kd")
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "(needs 101%): too weak to teach; use --method emb" in lines[0], result.output
    assert not (tmp_path / "kd" / "checkpoint.pt").exists()


def test_kd_from_an_onnx_teacher(weights: Path, faces: Path, tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    onnx = tmp_path / "teacher.onnx"
    exported = CliRunner().invoke(app, ["export", "--model", "mfn128", "--weights", str(weights), "--out", str(onnx)])
    assert exported.exit_code == 0, exported.output
    result = distill(faces, tmp_path / "kd", "--teacher", str(onnx), method="kd")
    assert result.exit_code == 0, result.output
    assert read_json(tmp_path / "kd" / CONFIG)["teacher"]["fitted_head"]["classes"] == 4


def test_kd_from_an_external_teacher_fits_on_its_table_of_the_training_images(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    model = register_colour(monkeypatch, tmp_path)
    monkeypatch.setitem(_REGISTRY, TINY, tiny_spec())
    result = distill(faces, tmp_path / "kd", "--teacher", COLOUR, method="kd")
    assert result.exit_code == 0, result.output
    assert len(model.embedded) == 32  # the fit reused prepare's table: each image embedded once
    assert read_json(tmp_path / "kd" / CONFIG)["teacher"]["fitted_head"]["images"] == 32
