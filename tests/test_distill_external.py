"""Distillation from an external, embeddings-only teacher (issue 9's dlib path) and the relational term.

The teacher is ``external_helpers.MeanColour``, whose embedding (an image's mean colour) can
be recomputed from the student's own batch.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest
import torch
from external_helpers import COLOUR, MeanColour, register_colour
from train_helpers import TINY, make_faces, tiny_spec

from facebench.cli import app
from facebench.distill.config import RELATIONAL_ALPHA, DistillConfig
from facebench.distill.losses import relational_loss
from facebench.distill.run import distill
from facebench.distill.teacher import ExternalTeacher
from facebench.models.registry import _REGISTRY
from facebench.runfolder import file_sha256


def _psi(x: np.ndarray) -> list[float]:
    """Mean-normalised pairwise distances of unit rows, by an explicit loop over ordered pairs."""
    unit = x / np.linalg.norm(x, axis=1, keepdims=True)
    pairs = [float(np.linalg.norm(unit[i] - unit[j])) for i, j in itertools.permutations(range(len(x)), 2)]
    mean = sum(pairs) / len(pairs)
    return [d / mean for d in pairs]


def test_relational_loss_matches_a_loop_over_pairs_across_widths() -> None:
    rng = np.random.default_rng(0)
    student, teacher = rng.normal(size=(6, 16)), rng.normal(size=(6, 5))
    gaps = [a - b for a, b in zip(_psi(student), _psi(teacher), strict=True)]
    huber = [0.5 * g * g if abs(g) < 1 else abs(g) - 0.5 for g in gaps]
    expected = sum(huber) / len(huber)
    got = relational_loss(torch.tensor(student), torch.tensor(teacher)).item()
    assert got == pytest.approx(expected, rel=1e-5) and expected > 1e-3


def test_relational_loss_is_zero_up_to_rotation_and_scale_and_finite_on_duplicates() -> None:
    torch.manual_seed(0)
    teacher = torch.randn(8, 12)
    rotation, _ = torch.linalg.qr(torch.randn(12, 12))
    assert relational_loss(3.0 * teacher @ rotation, teacher).item() < 1e-10
    student = torch.randn(8, 12, requires_grad=True)
    relational_loss(torch.cat([student[:1], student]), torch.randn(9, 4)).backward()  # a zero distance
    assert torch.isfinite(student.grad).all() and student.grad.abs().sum() > 0


@pytest.fixture
def colour_teacher(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[MeanColour]:
    model = register_colour(monkeypatch, tmp_path)
    monkeypatch.setitem(_REGISTRY, TINY, tiny_spec())
    threads = torch.get_num_threads()
    yield model
    torch.set_num_threads(threads)


def _config(faces: Path, out: Path, **kw: object) -> DistillConfig:
    return DistillConfig(model=TINY, data=str(faces), out=str(out), method="emb", teacher=COLOUR, embedding_size=16,
                         epochs=2, batch_size=8, workers=0, threads=1, checkpoint_every=0, seed=3, **kw)


def test_external_teacher_embeds_each_image_once_and_each_step_gets_its_own_images(
    colour_teacher: MeanColour, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    faces = make_faces(tmp_path / "faces")
    seen: list[int] = []
    compute = ExternalTeacher.compute

    def checked(self: ExternalTeacher, step, needs):  # type: ignore[no-untyped-def]
        outputs = compute(self, step, needs)
        from_crops = (step.images * 0.5 + 0.5).mean(dim=(2, 3))  # mean colour of the (maybe mirrored) crops
        torch.testing.assert_close(outputs.embedding, from_crops, atol=2e-3, rtol=0)
        seen.extend(step.indices.tolist())
        return outputs

    monkeypatch.setattr(ExternalTeacher, "compute", checked)
    distill(_config(faces, tmp_path / "run"), progress=False)
    assert len(colour_teacher.embedded) == 32  # the whole training set, once, before the first of two epochs
    assert colour_teacher.flips == [False]  # the images as stored
    assert sorted(seen) == sorted(list(range(32)) * 2)  # every image in each epoch, each with its own row
    record = json.loads((tmp_path / "run" / "config.json").read_text())
    assert record["teacher"] == {"model": COLOUR, "checkpoint": str(colour_teacher.weights_file),
                                 "sha256": file_sha256(colour_teacher.weights_file), "embedding_size": 3,
                                 "num_classes": None, "feature_channels": None, "data": None}
    assert (record["config"]["emb_loss"], record["config"]["alpha"]) == ("relational", RELATIONAL_ALPHA)
    with (tmp_path / "run" / "metrics.csv").open() as handle:
        rows = list(csv.DictReader(handle))
    assert rows and all(float(row["loss_emb"]) > 0 for row in rows)


@pytest.mark.parametrize(("extra", "expected"), [
    (["--method", "adv"], f"--method adv needs the teacher's feature maps, and {COLOUR} (test stand-in) has none"),
    (["--method", "emb", "--emb-loss", "cosine"], "gives 3-d, the student 16-d; pass --embedding-size 3 or "
                                                  "--emb-loss relational"),
])
def test_cli_refuses_what_an_embeddings_only_teacher_cannot_give(
    extra: list[str], expected: str, colour_teacher: MeanColour, tmp_path: Path, runner
) -> None:
    faces = make_faces(tmp_path / "faces")
    result = runner.invoke(app, ["distill", "--teacher", COLOUR, "--student", TINY, "--data", str(faces),
                                 "--out", str(tmp_path / "out"), "--embedding-size", "16", "--epochs", "1",
                                 "--batch-size", "8", "--workers", "0", *extra])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output
    assert not (tmp_path / "out" / "checkpoint.pt").exists()
