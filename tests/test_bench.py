"""`facebench bench`: plans from presets, runs the steps through the library, skips and resumes, logs."""

from __future__ import annotations

import csv
import functools
import json
import os
import shlex
from dataclasses import replace
from pathlib import Path

import pytest
import torch
from external_helpers import COLOUR, register_colour
from report_helpers import TINY, WIDE, register_tiny_models
from rich.console import Console
from train_helpers import make_faces, write_pairs_csv
from typer.testing import CliRunner

import facebench.train.run
from facebench.bench.plan import plan_steps, run_bench
from facebench.bench.presets import CPU_REAL, CPU_SMALL, PAPER
from facebench.bench.steps import (
    DONE,
    PARTIAL,
    TODO,
    AlignStep,
    ProfileStep,
    ReportStep,
    TrainingStep,
    VerifyStep,
)
from facebench.cli import app
from facebench.errors import FacebenchError
from facebench.report.runs import discover
from facebench.report.study import plotted_runs, study_rows

QUIET = Console(quiet=True)


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    register_tiny_models(monkeypatch)
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_faces(tmp_path_factory.mktemp("faces"))
    write_pairs_csv(root)
    return root


def tiny_preset(faces: Path, **kw: object):
    """The cpu-small preset shrunk to toy models and data; no students, so no distill step."""
    base = {"name": "tiny", "teacher": WIDE, "students": (TINY,), "methods": (), "data": str(faces),
            "verify_sets": {"toy": str(faces / "pairs.csv")}, "teacher_epochs": 2, "batch_size": 8,
            "checkpoint_every": 2, "verify_folds": None, "verify_batch_size": 16, "profile_threads": 1,
            "profile_warmup": 1, "profile_iters": 3,
            "extra_train": {"embedding_size": 16, "workers": 0, "threads": 1, "log_every": 1},
            "external_teachers": ()}
    return replace(CPU_SMALL, **{**base, **kw})


def test_cpu_small_plan_is_the_study_in_order() -> None:
    steps = plan_steps(CPU_SMALL, Path("runs/x"), Path("reports"))
    assert [s.title for s in steps] == [
        "train teacher r18", "verify teacher r18",
        "distill mobilenet (none)", "verify mobilenet (none)", "distill mobilenet (kd)", "verify mobilenet (kd)",
        "distill mobilenet (adv)", "verify mobilenet (adv)", "distill mobilenet (emb)", "verify mobilenet (emb)",
        "verify teacher dlib", "distill mobilenet (emb from dlib)", "verify mobilenet (emb from dlib)",
        "verify mobilenet untrained (reference)", "profile r18, mobilenet, dlib", "report",
    ]  # fmt: skip
    dlib = steps[10:13]
    assert isinstance(dlib[0], VerifyStep) and dlib[0].command().startswith("facebench verify --model dlib --pairs ")
    assert dlib[0].folder == Path("runs/x/teacher-dlib") and dlib[2].folder == Path("runs/x/mobilenet-emb-dlib")
    assert dlib[1].command().startswith("facebench distill --teacher dlib --student mobilenet --method emb ")
    adv = steps[6]
    assert isinstance(adv, TrainingStep) and adv.kind == "distill" and adv.folder == Path("runs/x/mobilenet-adv")
    assert (adv.settings["teacher"], adv.settings["method"], adv.settings["model"]) == (
        "runs/x/teacher-r18/checkpoint.pt", "adv", "mobilenet")
    assert adv.command().startswith("facebench distill --teacher runs/x/teacher-r18/checkpoint.pt --student mobilenet "
                                    "--method adv --data ../shared/data/celeba --out runs/x/mobilenet-adv --epochs 1")
    paper = plan_steps(PAPER, Path("runs/p"), Path("reports"))
    assert len(paper) == 2 + 2 * 4 * 2 + 2 + 2  # ... + each student untrained, profile, report
    assert paper[0].settings["val"] == PAPER.verify_sets and paper[0].settings["val_flip"] is True


def test_bench_runs_then_skips_what_is_complete(faces: Path, tmp_path: Path) -> None:
    preset = tiny_preset(faces)
    out, report = tmp_path / "runs", tmp_path / "reports"
    steps = plan_steps(preset, out, report)
    assert [type(s) for s in steps] == [TrainingStep, VerifyStep, VerifyStep, ProfileStep, ReportStep]
    assert steps[2].folder == out / f"{TINY}-untrained" and steps[2].spec == TINY  # the untrained reference
    assert run_bench(steps, preset, out, QUIET) == ["ran"] * 5
    verify = json.loads((out / f"teacher-{WIDE}" / "verify.json").read_text())
    assert verify["meta"]["stage"] == "final" and verify["meta"]["model_source"] == str(steps[1].checkpoint)
    assert [r["model"] for r in json.loads((out / "profile" / "profile.json").read_text())["rows"]] == [WIDE, TINY]
    assert (report / "figure1.png").is_file() and (report / "table1.md").is_file()
    log = json.loads((out / "bench.json").read_text())
    assert [s["status"] for s in log["steps"]] == ["ran"] * 5 and log["preset"] == "tiny"
    assert log["total_wall_s"] == pytest.approx(sum(s["wall_s"] for s in log["steps"]))
    assert "## Bench" in (report / "summary.md").read_text()

    checkpoint = out / f"teacher-{WIDE}" / "checkpoint.pt"
    stamp = checkpoint.stat().st_mtime_ns
    again = plan_steps(preset, out, report)
    assert [s.state() for s in again] == [DONE, DONE, DONE, DONE, TODO]
    assert run_bench(again, preset, out, QUIET) == [DONE, DONE, DONE, DONE, "ran"]
    assert checkpoint.stat().st_mtime_ns == stamp
    log2 = json.loads((out / "bench.json").read_text())
    assert [s["wall_s"] for s in log2["steps"][:4]] == [s["wall_s"] for s in log["steps"][:4]]  # carried over

    changed = plan_steps(tiny_preset(faces, teacher_epochs=3), out, report)
    with pytest.raises(FacebenchError, match="made with epochs=2, the plan says 3"):
        changed[0].state()
    later = (out / f"teacher-{WIDE}" / "verify.json").stat().st_mtime + 10
    os.utime(checkpoint, (later, later))  # newer weights than the verification: verify again
    assert plan_steps(preset, out, report)[1].state() == TODO


def test_interrupted_training_resumes(faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    preset = tiny_preset(faces)
    out = tmp_path / "runs"
    steps = plan_steps(preset, out, tmp_path / "reports")

    def stop(engine, step):
        if step == 5:
            raise KeyboardInterrupt

    monkeypatch.setattr(facebench.train.run, "train", functools.partial(facebench.train.run.train, callbacks=[stop]))
    with pytest.raises(KeyboardInterrupt):
        run_bench(steps, preset, out, QUIET)
    assert json.loads((out / "bench.json").read_text())["steps"][0]["status"] == "interrupted"
    assert steps[0].state() == PARTIAL  # checkpoint at step 4 of 8
    monkeypatch.undo()
    register_tiny_models(monkeypatch)
    assert run_bench(plan_steps(preset, out, tmp_path / "reports"), preset, out, QUIET)[0] == "ran"
    config = json.loads((out / f"teacher-{WIDE}" / "config.json").read_text())
    assert config["resumed_at_step"] == 4 and steps[0].state() == DONE


def test_train_command_reproduces_the_planned_config(faces: Path, tmp_path: Path) -> None:
    step = plan_steps(tiny_preset(faces), tmp_path / "runs", tmp_path / "reports")[0]
    words = shlex.split(step.command())
    assert words[:2] == ["facebench", "train"]
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output
    saved = json.loads((step.folder / "config.json").read_text())["config"]
    assert {k: saved[k] for k in step.settings} == step.settings


def test_cli_dry_run_and_bad_preset(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--preset", "cpu-small", "--dry-run", "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    assert "16. facebench report --runs" in result.output and not (tmp_path / "r").exists()
    bad = CliRunner().invoke(app, ["bench", "--preset", "huge", "--dry-run"])
    assert bad.exit_code == 2 and "'huge' is not one of 'cpu-small', 'cpu-real', 'paper', 'deploy'" in bad.output


def test_cpu_real_plan_aligns_once_verifies_the_pretrained_teacher_and_trains_each_seed() -> None:
    steps = plan_steps(CPU_REAL, Path("runs/r"), Path("reports/r"))
    align_data, align_lfw, teacher = steps[:3]
    assert isinstance(align_data, AlignStep) and (align_data.src, align_data.folder, align_data.detector) == (
        "../shared/data/celeba", Path("runs/r/aligned/celeba"), "mtcnn")
    assert isinstance(align_lfw, AlignStep) and (align_lfw.src, align_lfw.folder) == (
        "../shared/data/lfw", Path("runs/r/aligned/lfw"))
    assert isinstance(teacher, VerifyStep) and (teacher.spec, teacher.weights, teacher.folds) == (
        "mfn128", CPU_REAL.teacher_weights, None)
    assert (teacher.images_root, teacher.align) == ("runs/r/aligned/lfw", "none")
    assert not any(isinstance(s, TrainingStep) and s.kind == "train" for s in steps)  # the teacher is not trained
    trained = [s for s in steps if isinstance(s, TrainingStep)]
    assert [s.folder.name for s in trained] == [f"mobilenet-{m}-seed{k}" for k in (0, 1, 2)
                                                for m in ("none", "kd", "adv", "emb")]  # fmt: skip
    kd = trained[5]
    assert {k: kd.settings[k] for k in ("seed", "method", "teacher", "teacher_weights", "data", "align")} == {
        "seed": 1, "method": "kd", "teacher": "mfn128", "teacher_weights": CPU_REAL.teacher_weights,
        "data": "runs/r/aligned/celeba", "align": "none"}
    assert "--seed 1 " in kd.command() and "--teacher-weights ../shared/models/mobilefacenet/" in kd.command()
    verified = [s for s in steps if isinstance(s, VerifyStep)]
    assert {s.images_root for s in verified} == {"runs/r/aligned/lfw"} and len(verified) == 1 + 12 + 1
    assert [type(s) for s in steps[-2:]] == [ProfileStep, ReportStep] and steps[-3].spec == "mobilenet"


def test_prealign_refuses_what_it_cannot_align(faces: Path) -> None:
    two_sets = tiny_preset(faces, prealign="mtcnn", verify_sets={"a": "a/pairs.txt", "b": "b/pairs.txt"})
    with pytest.raises(FacebenchError, match="aligns the photos of one verification set: give one --val"):
        plan_steps(two_sets, Path("runs"), Path("reports"))
    with pytest.raises(FacebenchError, match="must be a folder of identity folders, not x/train.rec"):
        plan_steps(tiny_preset(faces, prealign="mtcnn", data="x/train.rec"), Path("runs"), Path("reports"))


def test_bench_from_a_pretrained_teacher_over_seeds(faces: Path, weights: Path, tmp_path: Path) -> None:
    """A pretrained teacher is verified (not trained) and teaches each seed; Table 1 groups the seeds."""
    preset = tiny_preset(faces, teacher="mfn128", teacher_weights=str(weights), methods=("none", "adv"),
                         seeds=(0, 1))  # fmt: skip
    out, report = tmp_path / "runs", tmp_path / "reports"
    steps = plan_steps(preset, out, report)
    assert set(run_bench(steps, preset, out, QUIET)) == {"ran"}
    verify = json.loads((out / "teacher-mfn128" / "verify.json").read_text())
    assert verify["meta"]["pretrained"] is True and verify["meta"]["model_source"] == str(weights)
    assert not (out / "teacher-mfn128" / "checkpoint.pt").exists()
    config = json.loads((out / f"{TINY}-adv-seed1" / "config.json").read_text())
    assert (config["config"]["seed"], config["config"]["teacher_weights"]) == (1, str(weights))
    rows = {r["model"]: r for r in csv.DictReader((report / "table1.csv").open())}
    student = rows[TINY]
    assert (student["toy_vanilla_n_seeds"], student["toy_adv_n_seeds"]) == ("2", "2")
    assert student["run_adv"] == f"{out / f'{TINY}-adv-seed0'};{out / f'{TINY}-adv-seed1'}"
    accuracies = [100 * json.loads((out / f"{TINY}-adv-seed{k}" / "verify.json").read_text())["rows"][0]["accuracy"]
                  for k in (0, 1)]  # fmt: skip
    assert float(student["toy_adv_seeds_acc_mean_pct"]) == pytest.approx(sum(accuracies) / 2)
    assert student["teacher"] == "mfn128 (teacher-mfn128)" and "mfn128 (teacher)" in rows
    missing = tiny_preset(faces, teacher="mfn128", teacher_weights=str(tmp_path / "gone.pt"), methods=("none",))
    with pytest.raises(FacebenchError, match="the teacher's weights .*gone.pt are missing"):
        run_bench(plan_steps(missing, tmp_path / "other", report), missing, tmp_path / "other", QUIET)


def test_bench_distils_students(faces: Path, tmp_path: Path) -> None:
    """Teacher, vanilla and KD students, verified, profiled, reported: Table 1 gets the teacher and student rows."""
    preset = tiny_preset(faces, methods=("none", "kd"))
    out, report = tmp_path / "runs", tmp_path / "reports"
    assert set(run_bench(plan_steps(preset, out, report), preset, out, QUIET)) == {"ran"}
    table = (report / "table1.md").read_text()
    assert f"| {WIDE} (teacher) " in table and f"| {TINY} " in table
    config = json.loads((out / f"{TINY}-kd" / "config.json").read_text())
    assert config["config"]["method"] == "kd" and config["teacher"]["checkpoint"] == str(out / f"teacher-{WIDE}" /
                                                                                        "checkpoint.pt")
    rerun = plan_steps(preset, out, report)
    assert [s.state() for s in rerun[:6]] == [DONE] * 6
    with (out / f"teacher-{WIDE}" / "checkpoint.pt").open("ab") as handle:
        handle.write(b"retrained")  # another teacher file: its students are stale
    with pytest.raises(FacebenchError, match="it was distilled from teacher .*the teacher was trained again"):
        rerun[2].state()


def test_bench_with_an_external_teacher(faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """An external teacher is verified as it comes, taught by emb, profiled, and reported with the student's
    Vanilla cell from the --method none run (same student alone) and a reference line in Figure 1."""
    colour = register_colour(monkeypatch, tmp_path)
    preset = tiny_preset(faces, methods=("none",), external_teachers=(COLOUR,))
    out, report = tmp_path / "runs", tmp_path / "reports"
    assert set(run_bench(plan_steps(preset, out, report), preset, out, QUIET)) == {"ran"}
    verify = json.loads((out / f"teacher-{COLOUR}" / "verify.json").read_text())
    assert verify["meta"]["external"] is True and verify["meta"]["model_name"] == COLOUR
    row = verify["rows"][0]  # the model's own settings, not the zoo's batch of verify_batch_size
    assert (row["batch_size"], row["dtype"], row["folds"]) == (1, "float32", "all") and preset.verify_batch_size == 16
    assert not (out / f"teacher-{COLOUR}" / "config.json").exists()
    student = json.loads((out / f"{TINY}-emb-{COLOUR}" / "config.json").read_text())
    assert student["teacher"]["model"] == COLOUR and student["config"]["emb_loss"] == "relational"
    rows = list(csv.DictReader((report / "table1.csv").open()))
    assert [r["run_vanilla"] for r in rows if r["model"] == f"{COLOUR} (teacher)"] == [str(out / f"teacher-{COLOUR}")]
    (taught,) = [r for r in rows if r["role"] == "student" and r["teacher"].startswith(COLOUR)]
    assert (taught["run_emb"], taught["run_vanilla"]) == (str(out / f"{TINY}-emb-{COLOUR}"), str(out / f"{TINY}-none"))
    assert float(taught["toy_emb_acc_pct"]) == pytest.approx(
        100 * json.loads((out / f"{TINY}-emb-{COLOUR}" / "verify.json").read_text())["rows"][0]["accuracy"])
    summary = (report / "summary.md").read_text()  # a dashed line, or a legend entry when far from the points
    assert any(f"Figure 1 {how} {COLOUR} (teacher)" in summary for how in ("draws", "names"))
    plotted = [p.name for p in plotted_runs(study_rows(discover(out).runs))]  # each run once, teacher named
    assert sorted(plotted) == sorted([f"{WIDE} (teacher)", f"{COLOUR} (teacher)", f"{TINY} Vanilla",
                                      f"{TINY} EMB KD from {COLOUR}", f"{TINY} (untrained)"])
    profile = {r["model"]: r for r in json.loads((out / "profile" / "profile.json").read_text())["rows"]}
    assert profile[COLOUR]["gflops"] is None and profile[WIDE]["gflops"] > 0
    assert len(colour.embedded) >= 32  # it embedded the training set for the student (and the pairs to verify)
    rerun = plan_steps(preset, out, report)
    assert [s.state() for s in rerun[:-1]] == [DONE] * (len(rerun) - 1)  # all complete, the report always rebuilt
