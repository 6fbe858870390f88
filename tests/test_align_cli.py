"""``facebench align`` on tiny folders made in tmp_path: layout, report, resume, bad input."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facebench.cli import app
from facebench.data.align import center_crop
from facebench.data.align_folder import REPORT_COLUMNS, REPORT_NAME


def write_image(path: Path, seed: int, size: tuple[int, int] = (250, 250)) -> np.ndarray:
    rgb = np.random.default_rng(seed).integers(0, 256, (*size, 3), dtype=np.uint8)
    path.parent.mkdir(parents=True, exist_ok=True)
    assert cv2.imwrite(str(path), cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    return rgb


def read_rgb(path: Path) -> np.ndarray:
    return cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)


def report_rows(dst: Path) -> list[dict[str, str]]:
    with (dst / REPORT_NAME).open(newline="") as handle:
        reader = csv.DictReader(handle)
        assert tuple(reader.fieldnames) == REPORT_COLUMNS
        return list(reader)


@pytest.fixture
def tree(tmp_path: Path) -> tuple[Path, dict[str, np.ndarray]]:
    """src/ with PNGs (lossless, so outputs can be compared exactly) two levels deep, one JPEG."""
    src = tmp_path / "src"
    images = {
        "alice/1.png": write_image(src / "alice" / "1.png", 1),
        "alice/2.png": write_image(src / "alice" / "2.png", 2, (300, 200)),
        "bob/x/3.png": write_image(src / "bob" / "x" / "3.png", 3),
    }
    write_image(src / "bob" / "4.jpg", 4)
    (src / "notes.txt").write_text("not an image")
    return src, images


def test_center_keeps_layout_and_writes_the_report(runner: CliRunner, tree, tmp_path: Path) -> None:
    src, images = tree
    dst = tmp_path / "dst"
    result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(dst), "--detector", "center"])
    assert result.exit_code == 0, result.output
    assert "4 images" in result.output and "centre-cropped 4 images" in result.output
    for file, rgb in images.items():
        np.testing.assert_array_equal(read_rgb(dst / file), center_crop(rgb))
    assert read_rgb(dst / "bob" / "4.jpg").shape == (112, 112, 3)
    assert sorted(p.relative_to(dst).as_posix() for p in dst.rglob("*") if p.is_file()) == sorted(
        [REPORT_NAME, "alice/1.png", "alice/2.png", "bob/4.jpg", "bob/x/3.png"])
    rows = report_rows(dst)
    assert [{k: v for k, v in row.items() if k != "time_ms"} for row in rows] == [
        {"file": f, "status": "aligned", "detector": "center", "score": "", "fallback": "0", "faces": "0"}
        for f in ["alice/1.png", "alice/2.png", "bob/4.jpg", "bob/x/3.png"]]
    assert all(float(row["time_ms"]) >= 0 for row in rows)


def test_resume_skips_done_files_and_redoes_missing_ones(runner: CliRunner, tree, tmp_path: Path) -> None:
    src, _ = tree
    dst = tmp_path / "dst"
    args = ["align", "--src", str(src), "--dst", str(dst), "--detector", "center"]
    assert runner.invoke(app, args).exit_code == 0
    marker = b"left alone"
    (dst / "alice" / "1.png").write_bytes(marker)  # a done file is not rewritten ...
    (dst / "bob" / "4.jpg").unlink()  # ... a missing one is redone
    first_rows = {row["file"]: row for row in report_rows(dst)}
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    assert "3 already done, 1 processed now" in result.output
    assert (dst / "alice" / "1.png").read_bytes() == marker
    assert read_rgb(dst / "bob" / "4.jpg").shape == (112, 112, 3)
    rows = {row["file"]: row for row in report_rows(dst)}
    assert rows["alice/1.png"] == first_rows["alice/1.png"]  # kept as it was, time included
    assert sorted(rows) == sorted(first_rows)
    # another detector's report rows do not count as done for this one
    result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(dst), "--detector", "haar"])
    assert result.exit_code == 0, result.output
    assert "0 already done, 4 processed now" in result.output
    assert {row["detector"] for row in report_rows(dst)} == {"haar"}
    assert {row["fallback"] for row in report_rows(dst)} == {"1"}  # noise has no faces


def test_corrupt_image_stops_with_one_line_and_nothing_half_written(runner: CliRunner, tree, tmp_path: Path) -> None:
    src, _ = tree
    good = (src / "bob" / "4.jpg").read_bytes()
    (src / "alice" / "9.jpg").write_bytes(good[: len(good) // 2])  # truncated JPEG
    dst = tmp_path / "dst"
    result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(dst), "--detector", "center"])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "alice/9.jpg" in lines[0] and "--skip-bad" in lines[0], result.output
    assert "Traceback" not in result.output
    # images sorted before it are complete and reported; no temporary files anywhere
    assert [row["file"] for row in report_rows(dst)] == ["alice/1.png", "alice/2.png"]
    assert not [p for p in dst.rglob(".*")]
    assert not (dst / "alice" / "9.jpg").exists()


def test_skip_bad_counts_and_reports_the_corrupt_file(runner: CliRunner, tree, tmp_path: Path) -> None:
    src, _ = tree
    (src / "alice" / "9.jpg").write_bytes(b"\xff\xd8 definitely not a jpeg")
    dst = tmp_path / "dst"
    result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(dst), "--detector", "center", "--skip-bad"])
    assert result.exit_code == 0, result.output
    assert "skipped 1 unreadable images, e.g. alice/9.jpg" in result.output
    rows = {row["file"]: row for row in report_rows(dst)}
    assert len(rows) == 5 and rows["alice/9.jpg"]["status"] == "corrupt"
    assert not (dst / "alice" / "9.jpg").exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--src", "{tmp}/nowhere", "--dst", "{tmp}/dst"], "source folder not found"),
        (["--src", "{tmp}/src", "--dst", "{tmp}/src/out"], "destination lies inside the source"),
        (["--src", "{tmp}/src", "--dst", "{tmp}/dst", "--detector", "dlib"], "'dlib' is not one of 'mtcnn', 'yunet', 'retinaface', 'haar', 'center'"),
        (["--src", "{tmp}/src", "--dst", "{tmp}/dst", "--workers", "0"], "Invalid value for '--workers'"),
        (["--src", "{tmp}/empty", "--dst", "{tmp}/dst"], "no images"),
    ],
)
def test_bad_arguments_give_one_line_and_exit_2(runner: CliRunner, tree, tmp_path: Path, args, expected) -> None:
    (tmp_path / "empty").mkdir()
    result = runner.invoke(app, ["align", *[a.format(tmp=tmp_path) for a in args]])
    assert result.exit_code == 2
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and expected in lines[0], result.output
    assert not (tmp_path / "dst").exists()


def test_two_workers_write_the_same_as_one(runner: CliRunner, tree, tmp_path: Path) -> None:
    src, _ = tree
    for workers in ("1", "2"):
        result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(tmp_path / workers),
                                     "--detector", "center", "--workers", workers])
        assert result.exit_code == 0, result.output
    for file in ["alice/1.png", "alice/2.png", "bob/4.jpg", "bob/x/3.png"]:
        assert (tmp_path / "1" / file).read_bytes() == (tmp_path / "2" / file).read_bytes()
    drop_time = lambda rows: [{k: v for k, v in r.items() if k != "time_ms"} for r in rows]  # noqa: E731
    assert drop_time(report_rows(tmp_path / "1")) == drop_time(report_rows(tmp_path / "2"))


def test_mtcnn_on_real_photos_and_a_faceless_one(runner: CliRunner, shared_data: Path, tmp_path: Path) -> None:
    from facebench.data.detectors import get_detector
    from facebench.errors import FacebenchError

    try:
        get_detector("mtcnn")
    except FacebenchError as exc:
        pytest.skip(f"MTCNN weights unavailable: {exc}")
    photos = [shared_data / "lfw" / "Aaron_Eckhart" / "Aaron_Eckhart_0001.jpg",
              shared_data / "lfw" / "AJ_Lamas" / "AJ_Lamas_0001.jpg"]
    if not all(p.is_file() for p in photos):
        pytest.skip("LFW photos not present")
    src = tmp_path / "src"
    for photo in photos:
        (src / photo.parent.name).mkdir(parents=True)
        shutil.copy(photo, src / photo.parent.name / photo.name)
    cv2.imwrite(str(src / "wall.png"), np.full((200, 300, 3), 90, np.uint8))
    dst = tmp_path / "dst"
    result = runner.invoke(app, ["align", "--src", str(src), "--dst", str(dst)])
    assert result.exit_code == 0, result.output
    assert "aligned on a detected face: 2 (66.7 %)" in result.output and "fallback (no face): 1 (33.3 %)" in result.output
    rows = {row["file"]: row for row in report_rows(dst)}
    for photo in photos:
        row = rows[f"{photo.parent.name}/{photo.name}"]
        assert (row["status"], row["detector"], row["fallback"], row["faces"]) == ("aligned", "mtcnn", "0", "1")
        assert float(row["score"]) > 0.99
    assert (rows["wall.png"]["fallback"], rows["wall.png"]["score"], rows["wall.png"]["faces"]) == ("1", "", "0")
    np.testing.assert_array_equal(read_rgb(dst / "wall.png"), center_crop(np.full((200, 300, 3), 90, np.uint8)))
