"""The run-folder owner: file names, atomic JSON, hashes, the teacher link and a run's state."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from facebench.checkpoint import save_checkpoint
from facebench.errors import FacebenchError
from facebench.runfolder import (
    ABSENT,
    BEST,
    CHECKPOINT,
    COMPLETE,
    CONFIG,
    PARTIAL,
    RunFolder,
    file_sha256,
)


def test_file_sha256_is_the_hash_of_the_bytes(tmp_path: Path) -> None:
    data = bytes(range(256)) * 5000  # > 1 MiB: read in several chunks
    (tmp_path / "f.bin").write_bytes(data)
    assert file_sha256(tmp_path / "f.bin") == hashlib.sha256(data).hexdigest()


def test_config_round_trip_is_atomic_and_damage_is_one_line(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path / "run")
    folder.write_config({"config": {"model": "r18", "lr": float("nan")}, "total_steps": 3})
    assert folder.read_config() == {"config": {"model": "r18", "lr": None}, "total_steps": 3}
    assert [p.name for p in folder.path.iterdir()] == [CONFIG]  # no temporary file left beside it
    (folder / CONFIG).write_text('{"config": \n  {"model": ]', encoding="utf-8")
    with pytest.raises(FacebenchError, match=rf"{CONFIG}:2: not valid JSON"):
        folder.read_config()


def test_verify_tables_are_written_side_by_side(tmp_path: Path) -> None:
    paths = RunFolder(tmp_path).write_verify([{"set": "lfw", "accuracy": 0.5}], title="t", meta={"model": "m"})
    assert [p.name for p in paths] == ["verify.csv", "verify.md", "verify.json"]
    assert RunFolder(tmp_path).read_verify() == {"meta": {"model": "m"}, "rows": [{"set": "lfw", "accuracy": 0.5}]}


def test_checkpoints_are_listed_best_first_unless_asked_otherwise(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.checkpoints() == []
    (tmp_path / CHECKPOINT).write_bytes(b"last")
    (tmp_path / BEST).write_bytes(b"best")
    assert folder.checkpoints() == [tmp_path / BEST, tmp_path / CHECKPOINT]
    assert folder.checkpoints((CHECKPOINT, BEST)) == [tmp_path / CHECKPOINT, tmp_path / BEST]
    assert folder.checkpoint_hashes() == {hashlib.sha256(b"last").hexdigest(), hashlib.sha256(b"best").hexdigest()}


def test_training_state_follows_the_last_checkpoint_step(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    assert folder.training_state() == ABSENT
    folder.write_config({"config": {}, "total_steps": 5})
    assert folder.training_state() == ABSENT  # no checkpoint yet
    model = torch.nn.Linear(2, 2)
    for step, state in ((3, PARTIAL), (5, COMPLETE)):
        save_checkpoint(tmp_path / CHECKPOINT, model, model_name="lin", embedding_size=2, config={},
                        extra={"training": {"step": step}})
        assert folder.training_state() == state


def test_check_teacher_refuses_another_teacher_file(tmp_path: Path) -> None:
    folder = RunFolder(tmp_path)
    folder.check_teacher("abc", "t.pt", "fix it")  # no config.json: nothing recorded, nothing to refuse
    folder.write_config({"config": {}, "teacher": {"checkpoint": "t.pt", "sha256": "a" * 64}})
    folder.check_teacher("a" * 64, "t.pt", "fix it")
    with pytest.raises(FacebenchError, match=r"distilled from teacher t\.pt \(sha256 aaaaaaaaaaaa\.\.\.\), but "
                                             r"new\.pt has sha256 bbbbbbbbbbbb\.\.\.; fix it$"):
        folder.check_teacher("b" * 64, "new.pt", "fix it")
