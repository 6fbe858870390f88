"""`facebench pack` and `facebench pairs`: results on disk, and bad input -> one line, exit 2, nothing written."""

from __future__ import annotations

from pathlib import Path

from data_fixtures import make_tree
from typer.testing import CliRunner

from facebench.cli import app
from facebench.data import read_pairs
from facebench.data.recordio import RecordDataset

runner = CliRunner()


def one_line_error(result) -> str:
    assert result.exit_code == 2, result.output
    text = result.output.strip()
    assert text.startswith("error: ") and "\n" not in text and "Traceback" not in text
    return text


def test_pack_writes_a_readable_set(tmp_path: Path) -> None:
    make_tree(tmp_path / "src", {"a": 2, "b": 3})
    result = runner.invoke(app, ["pack", "--src", str(tmp_path / "src"), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    assert "wrote 5 images of 2 identities" in result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["property", "train.idx", "train.rec"]
    dataset = RecordDataset(tmp_path / "out")
    assert len(dataset) == 5 and [dataset.label(i) for i in range(5)] == [0, 0, 1, 1, 1]


def test_pack_bad_input(tmp_path: Path) -> None:
    out = tmp_path / "out"
    message = one_line_error(runner.invoke(app, ["pack", "--src", str(tmp_path / "none"), "--out", str(out)]))
    assert "none: not a folder" in message and not out.exists()
    make_tree(tmp_path / "src", {"a": 2, "b": 2})
    bad = tmp_path / "src" / "b" / "img001.jpg"
    bad.write_bytes(b"\xff\xd8 truncated")
    message = one_line_error(runner.invoke(app, ["pack", "--src", str(tmp_path / "src"), "--out", str(out)]))
    assert f"{bad}: corrupt" in message
    assert not out.exists() or list(out.iterdir()) == []  # nothing half-written
    result = runner.invoke(app, ["pack", "--src", str(tmp_path / "src"), "--out", str(out), "--skip-bad"])
    assert result.exit_code == 0 and "skipped 1 unreadable images" in result.output
    assert len(RecordDataset(out)) == 3
    message = one_line_error(runner.invoke(app, ["pack", "--src", str(tmp_path / "src"), "--out", str(out),
                                                 "--align", "magic"]))
    assert "'--align': Value error, 'magic' is not one of" in message


def test_pairs_writes_what_the_reader_reads(tmp_path: Path) -> None:
    make_tree(tmp_path / "faces", {f"p{k}": 2 + k % 3 for k in range(9)})
    out = tmp_path / "pairs.txt"
    args = ["pairs", "--data", str(tmp_path / "faces"), "--out", str(out), "--folds", "3", "--per-fold", "2"]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    pairs = read_pairs(out, images_root=tmp_path / "faces")
    assert len(pairs) == 12 and int(pairs.issame.sum()) == 6 and pairs.folds.max() == 2
    first = out.read_text()
    assert runner.invoke(app, [*args, "--seed", "0"]).exit_code == 0 and out.read_text() == first


def test_pairs_asking_too_much(tmp_path: Path) -> None:
    make_tree(tmp_path / "faces", {"a": 3, "b": 2})
    out = tmp_path / "pairs.txt"
    result = runner.invoke(app, ["pairs", "--data", str(tmp_path / "faces"), "--out", str(out)])
    message = one_line_error(result)
    assert "in 10 identity-disjoint folds can supply at most 0 matched" in message
    assert not out.exists() and list(tmp_path.iterdir()) == [tmp_path / "faces"]
