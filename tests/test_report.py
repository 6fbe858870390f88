"""`facebench report` on a tiny study made with the real train / verify / profile code (tests/report_helpers.py)."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import cv2
import pandas as pd
import pytest
import torch
from report_helpers import TINY, WIDE, make_study, register_tiny_models
from typer.testing import CliRunner

from facebench.cli import app

OUTPUTS = ["curves.png", "figure1.png", "figure1.svg", "results.json", "roc.png", "summary.md", "table1.csv",
           "table1.md", "table2.csv", "table2.md"]


@pytest.fixture(scope="module")
def study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    with pytest.MonkeyPatch.context() as patch:
        register_tiny_models(patch)
        yield make_study(tmp_path_factory.mktemp("study"))


@pytest.fixture(scope="module")
def report(study: Path) -> Path:
    out = study.parent / "reports"
    result = CliRunner().invoke(app, ["report", "--runs", str(study), "--out", str(out)])
    assert result.exit_code == 0, result.output
    return out


def markdown_tables(text: str) -> list[list[dict[str, str]]]:
    """Every pipe table in ``text`` as a list of {header: cell}; asserts each is well formed."""
    tables, lines = [], text.splitlines()
    k = 0
    while k < len(lines):
        if lines[k].startswith("|") and k + 1 < len(lines) and set(lines[k + 1]) <= set("|:- "):
            header = [c.strip() for c in lines[k].strip("|").split("|")]
            assert all(set(c) <= set(":-") and c for c in (x.strip() for x in lines[k + 1].strip("|").split("|")))
            k += 2
            rows = []
            while k < len(lines) and lines[k].startswith("|"):
                cells = [c.strip() for c in lines[k].strip("|").split("|")]
                assert len(cells) == len(header), lines[k]
                rows.append(dict(zip(header, cells)))
                k += 1
            tables.append(rows)
        else:
            k += 1
    return tables


def verify_row(run: Path, set_name: str = "toy") -> dict:
    return next(r for r in json.loads((run / "verify.json").read_text())["rows"] if r["set"] == set_name)


def test_report_writes_every_file(report: Path) -> None:
    assert sorted(p.name for p in report.iterdir()) == OUTPUTS


def test_pngs_are_images_and_svg_is_svg(report: Path) -> None:
    for name in ("figure1.png", "roc.png", "curves.png"):
        image = cv2.imread(str(report / name))
        assert image is not None and image.ndim == 3 and min(image.shape[:2]) >= 300, name
        assert image.std() > 5  # not a blank canvas
    assert "<svg" in (report / "figure1.svg").read_text()[:2000]


def test_table1_cells_trace_to_verify_json(study: Path, report: Path) -> None:
    (table,) = markdown_tables((report / "table1.md").read_text())
    assert [r["model"] for r in table] == [f"{WIDE} (teacher)", TINY]
    teacher, student = table
    assert teacher["teacher"] == student["teacher"] == f"{WIDE} (teacher-wide)"
    for method, title in (("none", "Vanilla"), ("kd", "SL KD"), ("adv", "ADV KD"), ("emb", "EMB KD")):
        row = verify_row(study / f"tiny-{method}")
        assert student[f"toy {title}"] == f"{100 * row['accuracy']:.2f} ± {100 * row['accuracy_std']:.2f}"
        assert student[f"toy TAR@FAR=1e-3 {title}"] == "-"  # 8 mismatched pairs: TAR@1e-3 undefined
        if method != "none":  # the paired tests read the real verify writer's scores.csv and meta
            gain = 100 * (row["accuracy"] - verify_row(study / "tiny-none")["accuracy"])
            assert student[f"toy {title} - Vanilla"].startswith(f"{gain:+.2f} ["), student[f"toy {title} - Vanilla"]
        assert teacher[f"toy {title}"] == ("-" if method != "none" else
                                           f"{100 * verify_row(study / 'teacher-wide')['accuracy']:.2f} ± "
                                           f"{100 * verify_row(study / 'teacher-wide')['accuracy_std']:.2f}")
    csv = pd.read_csv(report / "table1.csv")
    assert list(csv["role"]) == ["teacher", "student"]
    assert csv.loc[1, "run_adv"] == str(study / "tiny-adv") and pd.isna(csv.loc[0, "run_adv"])
    assert csv.loc[1, "toy_kd_acc_pct"] == pytest.approx(100 * verify_row(study / "tiny-kd")["accuracy"])
    assert csv.loc[1, "toy_kd_n_pairs"] == 16
    assert f"- {TINY} EMB KD: `{study / 'tiny-emb'}`" in (report / "table1.md").read_text()


def test_table2_rows_are_the_profile_rows(study: Path, report: Path) -> None:
    profile = json.loads((study / "profile" / "profile.json").read_text())["rows"]
    (table,) = markdown_tables((report / "table2.md").read_text())
    csv = pd.read_csv(report / "table2.csv")
    assert list(csv["model"]) == [WIDE, TINY] == [r["model"] for r in table]
    for k, row in enumerate(profile):
        for key in ("params_m", "size_mb", "gmacs", "gflops", "latency_ms_mean", "latency_ms_std",
                    "mem_rss_peak_growth_mb"):
            assert csv.loc[k, key] == pytest.approx(row[key], rel=1e-12), key
        assert csv.loc[k, "source"] == str(study / "profile" / "profile.json")
        assert table[k]["latency ms (mean ± std)"] == f"{row['latency_ms_mean']:.2f} ± {row['latency_ms_std']:.2f}"
        assert (table[k]["device"], table[k]["dtype"], table[k]["batch"]) == (row["device"], "fp32", "1")
    assert csv.loc[0, "gflops"] > csv.loc[1, "gflops"] > 0


def test_results_and_summary(study: Path, report: Path) -> None:
    results = json.loads((report / "results.json").read_text())
    assert len(results["accuracy"]) == 5 and len(results["latency"]) == 2
    entry = next(e for e in results["accuracy"] if e["method"] == "ADV KD")
    assert (entry["model"], entry["set"], entry["source"]) == (TINY, "toy", str(study / "tiny-adv"))
    summary = (report / "summary.md").read_text()
    for link in ("(table1.md)", "(table2.md)", "(figure1.png)", "(figure1.svg)", "(roc.png)"):
        assert link in summary
    (machine,) = [line for line in summary.splitlines() if line.startswith("- CPU ")]  # one machine made it all
    assert f"torch {torch.__version__}" in machine
    (runs_table, profiles_table) = markdown_tables(summary)
    assert sorted(r["run"] for r in runs_table) == ["teacher-wide", "tiny-adv", "tiny-emb", "tiny-kd", "tiny-none"]
    for row in runs_table:
        verify = json.loads((study / row["run"] / "verify.json").read_text())["rows"]
        assert row["verify wall s"] == f"{sum(r['wall_s'] for r in verify):.2f}"
        assert 0 <= float(row["train wall s"]) < 120
    assert profiles_table[0]["models"] == f"{WIDE}, {TINY}"


def test_teacher_found_by_hash_after_folders_move(study: Path, tmp_path: Path) -> None:
    moved = tmp_path / "moved"
    shutil.copytree(study, moved, ignore=shutil.ignore_patterns("profile"))
    shutil.rmtree(moved / "tiny-kd")
    (moved / "unfinished").mkdir()
    shutil.copy(study / "tiny-kd" / "config.json", moved / "unfinished" / "config.json")
    result = CliRunner().invoke(app, ["report", "--runs", str(moved), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (table,) = markdown_tables((tmp_path / "out" / "table1.md").read_text())
    assert [r["teacher"] for r in table] == [f"{WIDE} (teacher-wide)"] * 2  # config paths point at the old folder
    assert table[1]["toy SL KD"] == "-"
    summary = (tmp_path / "out" / "summary.md").read_text()
    assert "unfinished: config.json without verify.json" in summary
    assert f"Table 2 lacks {WIDE}: no profile row for it" in summary
    assert f"Figure 1 draws {WIDE} (teacher) as a horizontal line: no GFLOPs count for {WIDE}" in summary


def test_curves_come_from_each_runs_metrics_csv(study: Path, tmp_path: Path) -> None:
    from facebench.report.figures import CURVE_TERM, training_curves
    from facebench.report.runs import discover
    from facebench.report.study import study_rows

    copy = tmp_path / "runs"
    shutil.copytree(study, copy)
    rows = study_rows(discover(copy).runs)
    runs = {run.path for row in rows for run in row.cells.values()}
    (copy / "tiny-kd" / "metrics.csv").unlink()
    written, notes = training_curves(rows, tmp_path / "curves.png")
    assert written and cv2.imread(str(tmp_path / "curves.png")) is not None
    assert notes == [f"training curves lack {TINY} SL KD from {WIDE}: no {CURVE_TERM} column in "
                     f"{copy / 'tiny-kd' / 'metrics.csv'}"]
    assert len(runs) > 2  # every other run has its curve
    for run in runs:
        (run / "metrics.csv").unlink(missing_ok=True)
    assert training_curves(rows, tmp_path / "none.png")[0] is False and not (tmp_path / "none.png").exists()


def test_teacher_found_by_folder_name_in_a_copy_without_checkpoints(study: Path, tmp_path: Path) -> None:
    """reports/runs keeps config, verify and metrics files only: no checkpoint to hash, the teacher's folder name."""
    light = tmp_path / "light"
    shutil.copytree(study, light, ignore=shutil.ignore_patterns("*.pt", "scores.csv"))
    result = CliRunner().invoke(app, ["report", "--runs", str(light), "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    (table,) = markdown_tables((tmp_path / "out" / "table1.md").read_text())
    assert [(r["model"], r["teacher"]) for r in table] == [(f"{WIDE} (teacher)", f"{WIDE} (teacher-wide)"),
                                                           (TINY, f"{WIDE} (teacher-wide)")]


def test_two_runs_for_one_cell_is_a_user_error(study: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(study / "tiny-kd", runs / "a")
    shutil.copytree(study / "tiny-kd", runs / "b")
    result = CliRunner().invoke(app, ["report", "--runs", str(runs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"two runs for {TINY}" in result.output and "SL KD" in result.output
    assert not (tmp_path / "out").exists()


def test_broken_verify_json_names_file_and_line(study: Path, tmp_path: Path) -> None:
    runs = tmp_path / "runs"
    shutil.copytree(study / "tiny-kd", runs / "a")
    (runs / "a" / "verify.json").write_text('{"rows": [\n  oops\n]}')
    result = CliRunner().invoke(app, ["report", "--runs", str(runs), "--out", str(tmp_path / "out")])
    assert result.exit_code == 2
    assert f"{runs / 'a' / 'verify.json'}:2: not valid JSON" in result.output
    assert "Traceback" not in result.output


def test_check_reads_run_folders_against_the_report(study: Path, report: Path, tmp_path: Path) -> None:
    baseline = tmp_path / "baseline.json"
    shutil.copy(report / "results.json", baseline)
    same = CliRunner().invoke(app, ["check", "--baseline", str(baseline), "--current", str(study)])
    assert same.exit_code == 0, same.output
    assert "7 entries compared" in same.output and "0 failed" in same.output
    runs = tmp_path / "runs"
    shutil.copytree(study, runs)
    verify = json.loads((runs / "tiny-emb" / "verify.json").read_text())
    verify["rows"][0]["accuracy"] -= 0.01  # a planted 1 pp drop
    (runs / "tiny-emb" / "verify.json").write_text(json.dumps(verify))
    dropped = CliRunner().invoke(app, ["check", "--baseline", str(baseline), "--current", str(runs)])
    assert dropped.exit_code == 1 and "EMB KD" in dropped.output and "-1.00 pp" in dropped.output


REPORTS = Path(__file__).resolve().parents[1] / "reports"


@pytest.mark.parametrize(("runs", "report"), [("cpu-small", REPORTS), ("cpu-real", REPORTS / "cpu-real")])
def test_committed_table1_rebuilds_from_the_committed_run_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                runs: str, report: Path) -> None:
    """Each committed study Table 1 is what `cd reports && facebench report --runs runs/<preset>` makes of
    reports/runs/<preset> (the bench's small files: config.json, verify.json, scores.csv, ...)."""
    if not (REPORTS / "runs" / runs).is_dir():
        pytest.skip(f"reports/runs/{runs} (the bench's small files) is not committed yet")
    shutil.copytree(REPORTS / "runs" / runs, tmp_path / "runs" / runs)
    monkeypatch.chdir(tmp_path)  # table1.md names each cell's folder as runs/<preset>/<run>
    result = CliRunner().invoke(app, ["report", "--runs", f"runs/{runs}", "--out", str(tmp_path / "out")])
    assert result.exit_code == 0, result.output
    for name in ("table1.md", "table1.csv"):
        assert (tmp_path / "out" / name).read_text() == (report / name).read_text(), name
