"""Files and folders facebench writes: output paths checked before any work, one run per folder (the lock),
stale temp files removed, durable checkpoints, and one line for a damaged file of ours."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from train_helpers import TINY, make_faces, tiny_spec
from typer.testing import CliRunner

from facebench import fileio
from facebench.bench.presets import get_preset
from facebench.cli import app
from facebench.errors import FacebenchError
from facebench.fileio import atomic_path, check_output_dir, check_output_file
from facebench.models import registry
from facebench.runlock import LOCK_NAME, FolderLock
from facebench.train.config import TrainConfig
from facebench.train.distributed import launched_as_main
from facebench.train.run import resume_config, train


def invoke(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(app, list(args))
    return result.exit_code, result.output


def one_error_line(code: int, output: str) -> str:
    """The red line of a refused command (exit 2, one line, no traceback)."""
    assert code == 2, output
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in output, output
    return lines[0]


def write_lock(folder: Path, pid: int) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / LOCK_NAME).write_text(json.dumps({"pid": pid, "host": socket.gethostname(), "token": "x",
                                                "since": "earlier"}))


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


@pytest.mark.parametrize("command", [
    ["verify", "--model", "mbf", "--pairs", "missing.txt"],
    ["profile", "--models", "mbf"],
    ["train", "--model", TINY, "--data", "missing"],
    ["distill", "--student", TINY, "--method", "none", "--data", "missing"],
    ["pack", "--src", "missing"],
    ["align", "--src", "missing", "--detector", "center"],
    ["bench", "--preset", "cpu-small"],
])  # fmt: skip
def test_an_output_folder_that_is_a_file_is_refused_before_any_work(tmp_path: Path, command: list[str]) -> None:
    target = tmp_path / "result"
    target.write_text("keep me")
    option = "--dst" if command[0] == "align" else "--out"
    started = time.perf_counter()
    line = one_error_line(*invoke(*command, option, str(target)))
    assert time.perf_counter() - started < 5
    assert f"{option} {target}: a file, not a folder" in line  # the output, not the missing input: checked first
    assert target.read_text() == "keep me" and sorted(p.name for p in tmp_path.iterdir()) == ["result"]


def test_pairs_into_a_folder_and_paths_under_a_file_are_refused(tmp_path: Path) -> None:
    line = one_error_line(*invoke("pairs", "--data", "missing", "--out", str(tmp_path)))
    assert f"--out {tmp_path}: a folder, not a file" in line
    (tmp_path / "file").write_text("")
    line = one_error_line(*invoke("pack", "--src", "missing", "--out", str(tmp_path / "file" / "sub")))
    assert f"{tmp_path / 'file'} is a file, so no folder can be made there" in line


def test_a_refused_pack_leaves_no_folder(tmp_path: Path) -> None:
    (tmp_path / "src").mkdir()  # no identities: pack refuses after the output folder was locked
    code, output = invoke("pack", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "new" / "out"))
    one_error_line(code, output)
    assert not (tmp_path / "new").exists()


def test_an_unwritable_parent_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    if Path("/proc/self").is_dir():  # no file can be made in /proc, even by root
        with pytest.raises(FacebenchError, match="--out /proc/facebench-test/run: cannot write in /proc"):
            check_output_dir("/proc/facebench-test/run", "--out")
    monkeypatch.setattr(os, "access", lambda *args, **kwargs: False)  # as a read-only folder answers (not as root)
    with pytest.raises(FacebenchError, match=f"--out {tmp_path / 'pairs.txt'}: cannot write in {tmp_path}"):
        check_output_file(tmp_path / "pairs.txt", "--out")
    line = one_error_line(*invoke("verify", "--model", "mbf", "--pairs", "missing.txt", "--out", str(tmp_path / "o")))
    assert "cannot write in" in line and not (tmp_path / "o").exists()
    assert list(tmp_path.iterdir()) == []  # the probe file is gone too


def test_a_live_lock_refuses_a_second_run_and_a_dead_ones_is_taken_over(tmp_path: Path) -> None:
    folder = tmp_path / "run"
    write_lock(folder, os.getppid())  # a live process on this host
    line = one_error_line(*invoke("verify", "--model", "mbf", "--pairs", "missing.txt", "--out", str(folder)))
    assert f"{folder}: another facebench run (pid {os.getppid()} on {socket.gethostname()}" in line
    with pytest.raises(FacebenchError, match=f"pid {os.getppid()}"):
        train(TrainConfig(model="mbf", data="missing", out=str(folder)))
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_NAME]

    write_lock(folder, dead_pid())
    with FolderLock(folder, "--out"):
        assert json.loads((folder / LOCK_NAME).read_text())["pid"] == os.getpid()
    assert not (folder / LOCK_NAME).exists()


def test_under_torchrun_only_rank_zero_locks(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("RANK", "1")
    assert not launched_as_main()
    monkeypatch.setenv("RANK", "0")
    assert launched_as_main()


def test_taking_the_lock_removes_stale_temp_files_only(tmp_path: Path) -> None:
    stale = [".checkpoint.ab12cd_9.pt", ".config.zz99yy88.json", ".property.k2m4n6p8", ".facebench-probe.a1b2c3d4"]
    kept = ["checkpoint.pt", ".keep", "notes.txt", ".config.json"]
    for name in stale + kept + [".config.fresh123.json"]:  # the last one still being written (changed just now)
        (tmp_path / name).write_text("x")
        if name != ".config.fresh123.json":
            os.utime(tmp_path / name, (time.time() - 120, time.time() - 120))
    kept.append(".config.fresh123.json")
    with FolderLock(tmp_path, "--out"):
        assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept + [LOCK_NAME])
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(kept)


def test_durable_writes_fsync_file_and_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    calls: list[int] = []
    real = os.fsync
    monkeypatch.setattr(fileio.os, "fsync", lambda fd: calls.append(fd) or real(fd))
    with atomic_path(tmp_path / "a.json") as tmp:
        tmp.write_text("{}")
    assert calls == []
    with atomic_path(tmp_path / "checkpoint.pt", durable=True) as tmp:
        tmp.write_bytes(b"x")
    assert len(calls) == 2 and (tmp_path / "checkpoint.pt").read_bytes() == b"x"


def test_damaged_json_of_ours_is_one_line(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run.mkdir()
    (run / "checkpoint.pt").write_bytes(b"")
    for text, expected in (("", "config.json:1: not valid JSON"), ("{}", "no 'config' object in it"),
                           ('{"config": []}', "no 'config' object in it")):
        (run / "config.json").write_text(text)
        assert expected in one_error_line(*invoke("train", "--resume", str(run)))

    runs = tmp_path / "runs"
    runs.mkdir()
    (runs / "bench.json").write_text('{"steps": [\n  {"step": "a"},\n  oops]}')
    line = one_error_line(*invoke("bench", "--preset", "cpu-small", "--dry-run", "--out", str(runs)))
    assert f"{runs / 'bench.json'}:3: not valid JSON" in line
    (runs / "bench.json").write_text('{"steps": [1]}')
    assert "bench.json: steps[0] is not a step object" in one_error_line(
        *invoke("bench", "--preset", "cpu-small", "--dry-run", "--out", str(runs)))
    (runs / "bench.json").unlink()
    teacher = runs / f"teacher-{get_preset('cpu-small').teacher}"  # a half-trained step, its config.json damaged
    teacher.mkdir()
    (teacher / "checkpoint.pt").write_bytes(b"")
    (teacher / "config.json").write_text('{"config": {"model": "r18"},')
    line = one_error_line(*invoke("bench", "--preset", "cpu-small", "--dry-run", "--out", str(runs)))
    assert f"{teacher / 'config.json'}:1: not valid JSON" in line


def test_resume_with_another_architecture_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    data = make_faces(tmp_path / "faces", identities=2, per_identity=4)
    run = tmp_path / "run"
    train(TrainConfig(model=TINY, data=str(data), out=str(run), embedding_size=16, epochs=1, batch_size=4,
                      workers=0, threads=1, seed=1), progress=False)
    config = json.loads((run / "config.json").read_text())
    config["config"]["model"] = "mbf"  # the config names another zoo model than the checkpoint holds
    (run / "config.json").write_text(json.dumps(config))
    (run / ".checkpoint.dead1234.pt").write_bytes(b"\0" * 1024)  # a save killed midway, two minutes ago
    os.utime(run / ".checkpoint.dead1234.pt", (time.time() - 120, time.time() - 120))
    with pytest.raises(FacebenchError) as caught:
        train(resume_config(run, {}), resume=True, progress=False)
    message = str(caught.value)
    assert "\n" not in message and len(message) < 400
    assert f"{run / 'checkpoint.pt'}: holds a {TINY} model (embedding 16)" in message and "names mbf" in message
    assert not (run / ".checkpoint.dead1234.pt").exists() and not (run / LOCK_NAME).exists()
    assert torch.load(run / "checkpoint.pt", weights_only=True)["model"] == TINY  # left as it was
