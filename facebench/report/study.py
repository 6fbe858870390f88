"""The study's Table 1 from run folders: one row per model (and teacher), one cell per method.

Rows: each trained run (or external model's verification) that some distill run used as its
teacher ("r18 (teacher)"); then one row per student model and teacher, whose cells are its
distill runs by method; a student's Vanilla cell is its ``--method none`` distill run, or
failing that the model's one ``--method none`` run under another teacher (the student alone,
whose teacher is only recorded: the same run is the baseline for every teacher), or the
model's one plain ``facebench train`` run; plain runs not used either way get a row of their
own. Two runs competing for one cell are refused (the table would have to pick one silently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from facebench.errors import FacebenchError
from facebench.report.runs import METHODS, TAR_KEY, Run, find_teacher

TEACHER, STUDENT, VANILLA = "teacher", "student", "vanilla"
NO_TEACHER = "-"
NO_RESULT = {"acc_pct": math.nan, "acc_std_pct": math.nan, "tar_pct_at_far_1e-03": math.nan, "n_pairs": 0}


@dataclass
class StudyRow:
    """A Table 1 row: a model in one role, its runs by method id (``none``, ``kd``, ``adv``, ``emb``)."""

    model: str
    role: str  # TEACHER, STUDENT or VANILLA
    teacher: str  # the teacher's label ("r18 (teacher-r18)"); for a teacher row its own; NO_TEACHER otherwise
    cells: dict[str, Run]

    @property
    def label(self) -> str:
        return f"{self.model} (teacher)" if self.role == TEACHER else self.model


def teacher_label(run: Run, teacher: Run | None) -> str:
    """'<model> (<teacher run folder>)', or '<model> (<checkpoint>)' for a teacher outside the runs."""
    if teacher is not None:
        return f"{teacher.model} ({teacher.name})"
    ref = run.teacher_ref or {}
    return f"{ref.get('model', '?')} ({ref.get('checkpoint', 'teacher not recorded')})"


def _put(cells: dict[str, Run], run: Run, what: str) -> None:
    if run.method in cells:
        raise FacebenchError(
            f"two runs for {what} {METHODS[run.method][1]}: {cells[run.method].path} and {run.path}; "
            "a report compares one run per model and method: move one out of --runs"
        )
    cells[run.method] = run


def study_rows(runs: list[Run]) -> list[StudyRow]:
    """Group runs into Table 1 rows (see the module docstring); teachers first, then by model."""
    distill = [r for r in runs if r.is_distill]
    plain = [r for r in runs if not r.is_distill]
    teachers = {r.path: find_teacher(r, runs) for r in distill}
    teacher_paths = {t.path for t in teachers.values() if t is not None}
    rows = [StudyRow(r.model, TEACHER, teacher_label(r, r), {"none": r}) for r in plain if r.path in teacher_paths]

    students: dict[tuple[str, str], dict[str, Run]] = {}
    for run in distill:
        label = teacher_label(run, teachers[run.path])
        _put(students.setdefault((run.model, label), {}), run, f"{run.model} (teacher {label})")
    vanilla: dict[str, dict[str, Run]] = {}
    for run in plain:
        if run.path not in teacher_paths:
            _put(vanilla.setdefault(run.model, {}), run, f"{run.model} (no teacher)")

    alone: dict[str, list[Run]] = {}
    for cells in students.values():
        if "none" in cells:
            alone.setdefault(cells["none"].model, []).append(cells["none"])
    used = set()
    for (model, label), cells in sorted(students.items()):
        if "none" not in cells and len(alone.get(model, [])) == 1:
            cells["none"] = alone[model][0]
        elif "none" not in cells and model in vanilla:
            cells["none"] = vanilla[model]["none"]
            used.add(model)
        rows.append(StudyRow(model, STUDENT, label, cells))
    rows += [StudyRow(m, VANILLA, NO_TEACHER, cells) for m, cells in sorted(vanilla.items()) if m not in used]
    return rows


@dataclass
class PlottedRun:
    """A run as the figures show it: once, under a name that says model, method and teacher."""

    name: str
    method: str
    row: StudyRow
    run: Run


def plotted_runs(rows: list[StudyRow]) -> list[PlottedRun]:
    """Every run folder once, in row order (a Vanilla run shared by two teachers' rows is one run)."""
    seen, plotted = set(), []
    for row in rows:
        for method, run in row.cells.items():
            if run.path in seen:
                continue
            seen.add(run.path)
            if row.role == TEACHER:
                name = row.label
            elif method == "none" or row.teacher == NO_TEACHER:
                name = f"{row.label} {METHODS[method][1]}"  # the student alone: no teacher to name
            else:
                name = f"{row.label} {METHODS[method][1]} from {row.teacher.split(' (')[0]}"
            plotted.append(PlottedRun(name, method, row, run))
    return plotted


def set_names(rows: list[StudyRow]) -> list[str]:
    """Verification sets in order of first appearance (teacher rows first)."""
    names: dict[str, None] = {}
    for row in rows:
        for run in row.cells.values():
            names.update(dict.fromkeys(run.sets))
    return list(names)


def primary_set(sets: list[str]) -> str | None:
    """The set Figure 1 plots: 'lfw' when present, else the first."""
    return "lfw" if "lfw" in sets else (sets[0] if sets else None)


def _pct(value: Any) -> float:
    return float("nan") if value is None else 100.0 * float(value)


def cell_values(run: Run, set_name: str) -> dict[str, float] | None:
    """Accuracy, its std and TAR@FAR=1e-3 in percent, and the pair count, of one run on one set."""
    row = run.sets.get(set_name)
    if row is None:
        return None
    return {
        "acc_pct": _pct(row["accuracy"]),
        "acc_std_pct": _pct(row["accuracy_std"]),
        "tar_pct_at_far_1e-03": _pct(row.get(TAR_KEY)),
        "n_pairs": int(row["n_pairs"]),
    }


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def table1(rows: list[StudyRow], sets: list[str]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(CSV rows: numbers in percent plus the run folder behind each method, Markdown rows: formatted cells)."""
    csv_rows, md_rows = [], []
    for row in rows:
        record: dict[str, Any] = {"model": row.label, "role": row.role, "teacher": row.teacher}
        shown: dict[str, str] = {"model": row.label, "teacher": row.teacher}
        for method, (column, _) in METHODS.items():
            record[f"run_{column}"] = str(row.cells[method].path) if method in row.cells else ""
        for set_name in sets:
            for method, (column, title) in METHODS.items():
                values = (cell_values(row.cells[method], set_name) if method in row.cells else None) or NO_RESULT
                for key, value in values.items():
                    record[f"{set_name}_{column}_{key}"] = value
                accuracy = values["acc_pct"]
                shown[f"{set_name} {title}"] = (
                    "-" if math.isnan(accuracy) else f"{accuracy:.2f} ± {values['acc_std_pct']:.2f}"
                )
            for method, (column, title) in METHODS.items():
                shown[f"{set_name} TAR@FAR=1e-3 {title}"] = _fmt(record[f"{set_name}_{column}_tar_pct_at_far_1e-03"])
        csv_rows.append(record)
        md_rows.append(shown)
    return csv_rows, md_rows


def accuracy_entries(rows: list[StudyRow]) -> list[dict[str, Any]]:
    """One entry per (row, method, set) with a result: what ``facebench check`` compares."""
    entries = []
    for row in rows:
        for method, run in row.cells.items():
            for set_name in run.sets:
                values = cell_values(run, set_name)
                entries.append({
                    "model": row.label, "teacher": row.teacher, "method": METHODS[method][1], "set": set_name,
                    "accuracy_pct": values["acc_pct"], "accuracy_std_pct": values["acc_std_pct"],
                    "tar_pct_at_far_1e-03": values["tar_pct_at_far_1e-03"], "n_pairs": values["n_pairs"],
                    "source": str(run.path),
                })  # fmt: skip
    return entries
