"""facebench distill on tiny models and data: the methods' terms, gradients, steps, resume, CLI and errors."""

from __future__ import annotations

import copy
import csv
import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
import torch.nn.functional as F
from test_train_resume import tensors
from torch import nn
from train_helpers import TINY, make_faces, tiny_spec, write_pairs_csv

from facebench.checkpoint import load_checkpoint, save_checkpoint
from facebench.cli import app
from facebench.distill.config import METHODS, DistillConfig
from facebench.distill.losses import kd_loss
from facebench.distill.methods import list_methods, method_spec, require
from facebench.distill.run import distill
from facebench.distill.teacher import Teacher, TeacherOutputs, resolve_teacher
from facebench.errors import FacebenchError
from facebench.models.common import FEATURE_MAP_SIZE, FaceBackbone
from facebench.models.registry import _REGISTRY, ModelSpec
from facebench.report.runs import Run, find_teacher
from facebench.runfolder import file_sha256
from facebench.train.config import TrainConfig
from facebench.train.engine import MODEL_KEY, Objective, Step
from facebench.train.losses import HEAD_KEY, margin_loss
from facebench.train.run import train

WIDE = "tiny-wide-test"  # a student whose feature maps have 12 channels (the teacher's have 8)
SETTINGS = {"embedding_size": 16, "batch_size": 8, "workers": 0, "threads": 1, "log_every": 1, "warmup_epochs": 0.5,
            "seed": 5}


class TinyWide(FaceBackbone):
    """112x112 -> (N, 12, 7, 7) -> E: a second toy backbone with other channels than TinyNet."""

    def __init__(self, *, embedding_size: int = 16) -> None:
        super().__init__()
        self.feature_channels = 12
        self.body = nn.Sequential(nn.Conv2d(3, 12, 16, stride=16, bias=False), nn.BatchNorm2d(12), nn.ReLU())
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(12 * FEATURE_MAP_SIZE**2, embedding_size),
                                  nn.BatchNorm1d(embedding_size))


@pytest.fixture(scope="module")
def zoo() -> Iterator[None]:
    """The two toy backbones in the zoo registry for this module's tests."""
    added = {TINY: tiny_spec(), WIDE: ModelSpec(WIDE, "test", "toy backbone, 12 channels", TinyWide)}
    added = {k: v for k, v in added.items() if k not in _REGISTRY}
    _REGISTRY.update(added)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)
    for name in added:
        _REGISTRY.pop(name)


@pytest.fixture(scope="module")
def world(zoo: None, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """Faces (4 identities x 8), a 5-identity set, and a tiny teacher trained 2 epochs on the first."""
    root = tmp_path_factory.mktemp("distill")
    faces = make_faces(root / "faces")
    teacher = root / "teacher"
    train(TrainConfig(model=TINY, data=str(faces), out=str(teacher), epochs=2, checkpoint_every=0, **SETTINGS),
          progress=False)
    return {"root": root, "faces": faces, "faces5": make_faces(root / "faces5", identities=5, seed=1),
            "teacher": teacher, "pairs": write_pairs_csv(faces)}


def _config(world: dict[str, Path], out: Path, method: str, student: str = TINY, **kw: object) -> DistillConfig:
    options = {**SETTINGS, "epochs": 1, "checkpoint_every": 0, "teacher": str(world["teacher"]), **kw}
    return DistillConfig(model=student, data=str(world["faces"]), out=str(out), method=method, **options)


def _plan_step(world: dict[str, Path], method: str, model: nn.Module, head: nn.Module, **kw: object):
    """A method's plan around (model, head) and one Step on the first 8 faces."""
    from facebench.data.loaders import open_dataset

    config = _config(world, world["root"] / "unused", method, **kw)
    teacher = resolve_teacher(config.teacher)
    dataset = open_dataset(world["faces"], train=False)
    plan = method_spec(method).build(config, teacher, Objective("main", {MODEL_KEY: model, HEAD_KEY: head},
                                                                margin_loss), dataset)
    images = torch.stack([dataset[i][0] for i in range(0, 32, 4)])
    labels = torch.tensor([dataset[i][1] for i in range(0, 32, 4)])
    modules = {n: m for o in plan.objectives for n, m in o.modules.items()} | plan.frozen
    return plan, teacher, Step(images, labels, torch.arange(0, 32, 4), modules, step=0, epoch=0)


def test_registry_matches_the_cli_names() -> None:
    assert tuple(list_methods()) == tuple(METHODS)


def test_kd_term_is_zero_for_a_student_equal_to_the_teacher_and_matches_margin_free_kl(world) -> None:
    teacher = resolve_teacher(str(world["teacher"]))
    twin, twin_head = copy.deepcopy(teacher.backbone).eval(), copy.deepcopy(teacher.head)
    plan, _, step = _plan_step(world, "kd", twin, twin_head, alpha=2.5, temperature=3.0)
    terms = plan.objectives[0].loss(step)
    assert set(terms) == {"arcface", "kd"}
    assert terms["arcface"].item() > 1.0  # the margin is in the ArcFace term ...
    assert abs(terms["kd"].item()) < 1e-5  # ... and not in the KD logits: equal cosines give KL = 0

    torch.manual_seed(0)
    student, student_head = _REGISTRY[TINY].builder(embedding_size=16).eval(), copy.deepcopy(twin_head)
    with torch.no_grad():
        student_head.fc.weight.copy_(torch.randn_like(student_head.fc.weight))
    plan, teacher, step = _plan_step(world, "kd", student, student_head, alpha=2.5, temperature=3.0)
    got = plan.objectives[0].loss(step)["kd"].item()
    with torch.no_grad():  # independent: s*cos over each head's normalised class weights, no margin
        def logits(model: nn.Module, head: nn.Module) -> torch.Tensor:
            return head.scale * F.normalize(model(step.images)) @ F.normalize(head.fc.weight).T
        expected = 2.5 * kd_loss(logits(student, student_head), logits(teacher.backbone, teacher.head), 3.0).item()
    assert got == pytest.approx(expected, rel=1e-5) and expected > 0.01


def test_emb_term_is_zero_for_identical_embeddings(world) -> None:
    teacher = resolve_teacher(str(world["teacher"]))
    twin = copy.deepcopy(teacher.backbone).eval()
    for kind in ("cosine", "l2"):
        plan, _, step = _plan_step(world, "emb", twin, copy.deepcopy(teacher.head), emb_loss=kind)
        terms = plan.objectives[0].loss(step)
        assert set(terms) == {"arcface", "emb"} and abs(terms["emb"].item()) < 1e-5


def test_adversarial_gradients_reach_the_student_backbone_and_never_the_teacher(world) -> None:
    from facebench.models import create_model
    from facebench.models.heads import create_head

    model, head = create_model(WIDE, embedding_size=16), create_head("arcface", 16, 4)
    plan, _, step = _plan_step(world, "adv", model, head)
    student, judge = plan.objectives
    assert set(student.modules) == {MODEL_KEY, HEAD_KEY, "transfer"} and set(judge.modules) == {"discriminator"}
    terms = student.loss(step)
    assert set(terms) == {"arcface", "adv_g"}
    terms["adv_g"].backward()
    first_conv = model.body[0].weight
    assert first_conv.grad is not None and first_conv.grad.abs().sum() > 0
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in plan.objectives[0].modules["transfer"].parameters())
    assert all(p.grad is None and not p.requires_grad for m in plan.frozen.values() for p in m.parameters())
    assert set(judge.loss(step)) == {"adv_d"}


def _read_csv(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_adv_run_steps_student_and_discriminator_and_leaves_the_teacher_bit_identical(world, tmp_path: Path) -> None:
    seen: dict[str, dict[str, torch.Tensor]] = {}

    def watch(engine, step: int) -> None:
        if step in (1, engine.total_steps):
            seen[f"step{step}"] = {f"{n}.{k}": v.detach().clone() for n, m in engine.modules.items()
                                   for k, v in m.state_dict().items()}

    before = file_sha256(world["teacher"] / "checkpoint.pt")
    result = distill(_config(world, tmp_path / "adv", "adv", student=WIDE, disc_lr=1e-3), callbacks=[watch],
                     progress=False)
    assert result.fit.step == 4
    assert json.loads((tmp_path / "adv" / "config.json").read_text())["config"]["alpha"] == 10.0  # the default, recorded
    first, last = seen["step1"], seen["step4"]
    for prefix in ("model.body.0.weight", "discriminator.net.0.weight", "transfer.0.weight", "head.fc.weight"):
        assert not torch.equal(first[prefix], last[prefix]), prefix  # both players stepped
    saved = load_checkpoint(world["teacher"] / "checkpoint.pt")
    for key, value in saved["state_dict"].items():
        assert torch.equal(last[f"teacher.{key}"], value), key  # weights and BN statistics untouched
    for key, value in saved["extra"]["training"]["modules"]["head"].items():
        assert torch.equal(last[f"teacher_head.{key}"], value), key
    assert file_sha256(world["teacher"] / "checkpoint.pt") == before

    rows = _read_csv(tmp_path / "adv" / "metrics.csv")
    assert [r["step"] for r in rows] == ["1", "2", "3", "4"]
    assert {"loss", "loss_arcface", "loss_adv_g", "loss_adv_d", "lr", "lr_discriminator"} <= set(rows[0])
    for row in rows:  # the student's total is its two terms; the discriminator's term is logged beside it
        assert float(row["loss"]) == pytest.approx(float(row["loss_arcface"]) + float(row["loss_adv_g"]), rel=1e-4)
    training = load_checkpoint(tmp_path / "adv" / "checkpoint.pt")["extra"]["training"]
    assert set(training["modules"]) == {"head", "transfer", "discriminator"}
    assert len(training["optimizers"]) == 2 and training["optimizers"][1]["state"]
    assert all(s["step"].item() == 4 for s in training["optimizers"][1]["state"].values())  # AdamW, 4 steps


class Interrupted(Exception):
    pass


def test_adv_resume_is_bit_identical_including_the_discriminator(world, tmp_path: Path) -> None:
    from facebench.train.run import resume_config

    whole = distill(_config(world, tmp_path / "whole", "adv", student=WIDE, epochs=2, checkpoint_every=3),
                    progress=False)
    assert whole.fit.step == 8

    def stop(engine, step: int) -> None:
        if step == 5:
            raise Interrupted

    with pytest.raises(Interrupted):
        distill(_config(world, tmp_path / "cut", "adv", student=WIDE, epochs=2, checkpoint_every=3),
                callbacks=[stop], progress=False)
    assert load_checkpoint(tmp_path / "cut" / "checkpoint.pt")["extra"]["training"]["step"] == 3
    config = resume_config(tmp_path / "cut", {}, DistillConfig)
    assert config.method == "adv" and config.model == WIDE
    distill(config, resume=True, progress=False)

    want = tensors(load_checkpoint(tmp_path / "whole" / "checkpoint.pt"))
    have = tensors(load_checkpoint(tmp_path / "cut" / "checkpoint.pt"))
    assert want.keys() == have.keys() and any(k.startswith("modules/discriminator") for k in want)
    assert any(k.startswith("optimizers/1/state") for k in want)
    for name, tensor in want.items():
        assert torch.equal(tensor, have[name]), name


def test_resume_refuses_a_changed_teacher_file(world, tmp_path: Path) -> None:
    from facebench.train.run import resume_config

    teacher = tmp_path / "teacher.pt"
    shutil.copy(world["teacher"] / "checkpoint.pt", teacher)
    distill(_config(world, tmp_path / "run", "emb", teacher=str(teacher)), progress=False)
    saved = load_checkpoint(teacher)
    saved["state_dict"] = {k: v + 1 if v.is_floating_point() else v for k, v in saved["state_dict"].items()}
    torch.save(saved, teacher)
    with pytest.raises(FacebenchError, match="resume with that teacher"):
        distill(resume_config(tmp_path / "run", {}, DistillConfig), resume=True, progress=False)


def test_none_is_plain_training_under_the_same_settings(world, tmp_path: Path) -> None:
    distill(_config(world, tmp_path / "none", "none"), progress=False)
    train(TrainConfig(model=TINY, data=str(world["faces"]), out=str(tmp_path / "plain"), epochs=1,
                      checkpoint_every=0, **SETTINGS), progress=False)
    ours, plain = load_checkpoint(tmp_path / "none" / "checkpoint.pt"), load_checkpoint(tmp_path / "plain" / "checkpoint.pt")
    for key, value in plain["state_dict"].items():
        assert torch.equal(ours["state_dict"][key], value), key
    config = json.loads((tmp_path / "none" / "config.json").read_text())
    assert config["config"]["method"] == "none"
    assert config["teacher"]["sha256"] == file_sha256(world["teacher"] / "checkpoint.pt")  # recorded for the report
    assert [c for c in _read_csv(tmp_path / "none" / "metrics.csv")[0] if c.startswith("loss")] == ["loss_arcface", "loss"]
    assert config["config"]["alpha"] is None  # no distillation term, no weight


def test_cli_kd_run_folder_is_what_the_report_reads(world, tmp_path: Path, runner) -> None:
    out = tmp_path / "runs" / "kd"
    result = runner.invoke(app, ["distill", "--teacher", str(world["teacher"]), "--student", TINY, "--method", "kd",
                                 "--data", str(world["faces"]), "--out", str(out), "--embedding-size", "16",
                                 "--epochs", "1", "--batch-size", "8", "--workers", "0", "--threads", "1",
                                 "--log-every", "2", "--alpha", "0.5", "--temperature", "2",
                                 "--val", f"toy={world['pairs']}"])
    assert result.exit_code == 0, result.output
    assert "distilled tiny-test (kd) to step 4" in result.output
    config = json.loads((out / "config.json").read_text())
    assert {k: config["config"][k] for k in ("model", "method", "teacher", "alpha", "temperature")} == {
        "model": TINY, "method": "kd", "teacher": str(world["teacher"]), "alpha": 0.5, "temperature": 2.0}
    checkpoint = world["teacher"] / "checkpoint.pt"
    assert config["teacher"] == {"model": TINY, "checkpoint": str(checkpoint.resolve()), "sha256": file_sha256(checkpoint),
                                 "embedding_size": 16, "num_classes": 4, "feature_channels": 8,
                                 "data": str(world["faces"])}
    assert {"loss_arcface", "loss_kd"} <= set(_read_csv(out / "metrics.csv")[0])
    shutil.copytree(world["teacher"], tmp_path / "runs" / "teacher")
    (tmp_path / "runs" / "teacher" / "verify.json").write_text(json.dumps({"rows": [], "meta": {}}))
    runs = [Run.load(out, "kd"), Run.load(tmp_path / "runs" / "teacher", "teacher")]
    assert runs[0].method == "kd" and runs[0].is_distill
    assert find_teacher(runs[0], runs) is runs[1]  # linked by the recorded hash, the folder being a copy


@pytest.mark.parametrize("case", ["missing", "zoo-name", "garbage", "classes", "no-head", "no-method", "emb-size",
                                  "alpha"])
def test_cli_bad_input_is_one_line_exit_2(case: str, world, tmp_path: Path, runner, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    teacher, data, extra = str(world["teacher"]), str(world["faces"]), ["--method", "kd"]
    if case == "missing":
        teacher, expected = str(tmp_path / "nope" / "run"), "no such file or folder"
    elif case == "zoo-name":
        teacher, expected = TINY, f"no trained {TINY} run at runs/{TINY}; train it first"
    elif case == "garbage":
        (tmp_path / "bad.pt").write_bytes(b"not a checkpoint")
        teacher, expected = str(tmp_path / "bad.pt"), "unreadable checkpoint"
    elif case == "classes":
        data, expected = str(world["faces5"]), f"--data {world['faces5']} differs (4 classes vs 5)"
    elif case == "no-head":
        checkpoint = load_checkpoint(world["teacher"] / "checkpoint.pt")
        model = _REGISTRY[TINY].builder(embedding_size=16)
        model.load_state_dict(checkpoint["state_dict"])
        save_checkpoint(tmp_path / "best.pt", model, model_name=TINY, embedding_size=16, config=checkpoint["config"])
        teacher, expected = str(tmp_path / "best.pt"), "--method kd needs class logits from the teacher"
    elif case == "no-method":
        extra, expected = [], "give --method, one of: none, kd, adv, emb"
    elif case == "emb-size":
        extra, expected = ["--method", "emb", "--emb-loss", "cosine", "--embedding-size", "32"], "pass --embedding-size 16"
    else:
        extra, expected = ["--method", "kd", "--alpha", "-1"], "'--alpha': -1.0 is not a finite number of 0 or more"
    options = ["--embedding-size", "16", *extra] if "--embedding-size" not in extra else extra
    result = runner.invoke(app, ["distill", "--teacher", teacher, "--student", TINY, "--data", data,
                                 "--out", str(tmp_path / "out"), "--epochs", "1", "--batch-size", "8",
                                 "--workers", "0", *options])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and expected in lines[0], result.output
    assert not (tmp_path / "out" / "checkpoint.pt").exists()


class EmbeddingsOnly(Teacher):
    """An external teacher as issue 9 describes it: 128-d embeddings, no logits (kd fits a head), no feature maps."""

    name, checkpoint, sha256, embedding_size = "dlib", "/models/dlib.dat", "0" * 64, 128
    without_features = "an external model gives embeddings only"

    def compute(self, step: Step, needs) -> TeacherOutputs:
        return TeacherOutputs(torch.zeros(len(step.images), 128))


def test_a_teacher_without_maps_is_refused_for_adv_and_allowed_kd_with_a_fitted_head() -> None:
    with pytest.raises(FacebenchError) as caught:
        require(EmbeddingsOnly(), method_spec("adv"))
    assert str(caught.value) == ("--method adv needs the teacher's feature maps, and dlib (/models/dlib.dat) has none "
                                 "(an external model gives embeddings only); use --method emb")
    for method in ("kd", "emb", "none"):
        require(EmbeddingsOnly(), method_spec(method))
