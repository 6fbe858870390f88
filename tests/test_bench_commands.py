"""The commands `facebench bench` prints are runnable as printed and do what its steps do."""

from __future__ import annotations

import json
import shlex
from pathlib import Path

import pytest
import typer
from report_helpers import TINY, register_tiny_models, train_run
from rich.console import Console
from train_helpers import make_faces, write_pairs_csv
from typer.testing import CliRunner

from facebench.bench.plan import plan_for
from facebench.bench.presets import PRESETS, Preset
from facebench.bench.steps import DetectStep, VerifyStep
from facebench.cli import app

TIME_FIELDS = {"wall_s"}


@pytest.fixture(autouse=True)
def tiny_models(monkeypatch: pytest.MonkeyPatch) -> None:
    register_tiny_models(monkeypatch)


def write_four_fold_csv(root: Path) -> Path:
    """A 4-fold pairs CSV over make_faces' tree (4 identities x 8 images): 8 pairs per fold, half matched."""
    lines = ["path_a,path_b,issame,fold"]
    for fold in range(4):
        a, b = 2 * fold, 2 * fold + 1
        for k in range(4):
            lines += [f"id{k}/{a:03d}.png,id{k}/{b:03d}.png,1,{fold}",
                      f"id{k}/{a:03d}.png,id{(k + 1) % 4}/{b:03d}.png,0,{fold}"]
    path = root / "pairs4.csv"
    path.write_text("\n".join(lines) + "\n")
    return path


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_faces(tmp_path_factory.mktemp("faces"))
    write_pairs_csv(root)  # train_run validates on it
    write_four_fold_csv(root)
    return root


def test_verify_command_reproduces_the_bench_step_with_folds(faces: Path, tmp_path: Path) -> None:
    run = train_run(faces, tmp_path / "run", TINY)
    step = VerifyStep("verify tiny", run, {"lfw": str(faces / "pairs4.csv")}, 2, False, 16, "cpu", "center")
    step.run(Console(quiet=True), resume=False)
    command = step.command()
    assert "#" not in command and " --folds 2 " in command and " --pairs lfw=" in command  # the bench's set name
    words = shlex.split(command)
    assert words[:2] == ["facebench", "verify"]
    by_hand = tmp_path / "by-hand"
    words[words.index("--out") + 1] = str(by_hand)
    result = CliRunner().invoke(app, words[1:])
    assert result.exit_code == 0, result.output

    bench, hand = (json.loads((folder / "verify.json").read_text()) for folder in (run, by_hand))
    untimed = lambda rows: [{k: v for k, v in r.items() if k not in TIME_FIELDS} for r in rows]  # noqa: E731
    assert untimed(bench["rows"]) == untimed(hand["rows"])
    (row,) = bench["rows"]
    assert (row["set"], row["n_pairs"], row["n_folds"], row["folds"]) == ("lfw", 16, 2, 2)
    assert bench["meta"]["folds"] == hand["meta"]["folds"] == 2
    assert bench["meta"]["stage"] == "final" and "stage" not in hand["meta"] and "stage" not in row
    assert (run / "scores.csv").read_text() == (by_hand / "scores.csv").read_text()
    assert step.state() == "done"


@pytest.mark.parametrize(("folds", "expected"), [("5", "the set has only 4 folds; give at most 4")])  # < 2: Click
def test_verify_refuses_folds_the_file_lacks(faces: Path, tmp_path: Path, folds: str, expected: str) -> None:
    pairs = faces / "pairs4.csv"
    result = CliRunner().invoke(app, ["verify", "--model", TINY, "--pairs", str(pairs), "--folds", folds,
                                      "--device", "cpu", "--out", str(tmp_path / "out")])
    assert result.exit_code == 2, result.output
    (line,) = result.output.strip().splitlines()
    assert str(pairs) in line and f"--folds {folds}: " in line and expected in line
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("preset", PRESETS.values(), ids=list(PRESETS))
def test_every_printed_command_names_options_of_its_subcommand(preset: Preset) -> None:
    group = typer.main.get_command(app)
    for step in plan_for(preset, Path("runs/x"), Path("reports")):
        if isinstance(step, DetectStep):  # library only: says so, and what it does
            assert step.command().startswith("(no CLI equivalent: detect every photo of"), step.command()
            continue
        words = shlex.split(step.command())
        assert words[0] == "facebench" and words[1] in group.commands, step.command()
        params = group.commands[words[1]].params
        options = {name for p in params for name in (*p.opts, *p.secondary_opts)}
        unknown = [w for w in words[2:] if w.startswith("--") and w not in options]
        assert not unknown, (step.title, unknown)
