"""Atomic writes: all or nothing, ordinary permissions."""

from __future__ import annotations

import os

import pytest

from facebench.fileio import atomic_path, write_json_atomic, write_text_atomic


def test_failed_write_leaves_the_old_file_and_no_temporary(tmp_path) -> None:
    target = tmp_path / "result.json"
    write_text_atomic(target, "old")
    with pytest.raises(RuntimeError):
        with atomic_path(target) as tmp:
            tmp.write_text("half")
            raise RuntimeError("crash mid-write")
    assert target.read_text() == "old"
    assert [p.name for p in tmp_path.iterdir()] == ["result.json"]


def test_new_file_gets_the_umask_mode_and_nan_becomes_null(tmp_path) -> None:
    umask = os.umask(0o022)
    try:
        write_json_atomic(tmp_path / "a.json", {"x": float("nan"), "y": [1.5]})
    finally:
        os.umask(umask)
    assert (tmp_path / "a.json").stat().st_mode & 0o777 == 0o644
    assert (tmp_path / "a.json").read_text() == '{\n  "x": null,\n  "y": [\n    1.5\n  ]\n}\n'
