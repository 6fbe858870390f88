"""The study's Table 1 from run folders: one row per model (and teacher), one cell per method.

Rows: each trained run (or external model's verification) that some distill run used as its
teacher ("r18 (teacher)"); then one row per student model and teacher, whose cells are its
distill runs by method; a student's Vanilla cell is its ``--method none`` distill run, or
failing that the model's one ``--method none`` run under another teacher (the student alone,
whose teacher is only recorded: the same run is the baseline for every teacher), or the
model's one plain ``facebench train`` run; plain runs not used either way get a row of their
own; last, one reference row per untrained zoo model verified ("mobilenet (untrained)").
Runs of one cell that differ only in ``config.seed`` (and where they ran) are that cell's
seeds; two runs competing for one cell otherwise are refused (the table would have to pick one
silently).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from facebench.errors import FacebenchError
from facebench.report.operating import (
    REPORTED_FMRS,
    operating_cells,
    operating_record,
    paired_against,
    paired_cell,
    paired_fields,
    point_at,
)
from facebench.report.runs import METHODS, TAR_KEY, Run, find_teacher
from facebench.report.significance import Comparison, PairDecisions, compare, read_decisions, sample_std
from facebench.train.config import RESUME_OVERRIDABLE

TEACHER, STUDENT, VANILLA, REFERENCE = "teacher", "student", "vanilla", "untrained"
# config.json ``config`` keys that may differ between the seeds of one cell: the seed, where the run was
# written and where it ran
SEED_FREE = ("seed", "out", "resume", *RESUME_OVERRIDABLE)
NO_TEACHER = "-"
TAR_PCT = "tar_pct_at_far_1e-03"
NO_RESULT = {"acc_pct": math.nan, "acc_std_pct": math.nan, TAR_PCT: math.nan, "n_pairs": 0}


@dataclass
class StudyRow:
    """A Table 1 row: a model in one role, its runs by method id (``none``, ``kd``, ``adv``, ``emb``)."""

    model: str
    role: str  # TEACHER, STUDENT, VANILLA or REFERENCE
    teacher: str  # the teacher's label ("r18 (teacher-r18)"); for a teacher row its own; NO_TEACHER otherwise
    seeds: dict[str, list[Run]]  # every run of each cell, by ascending seed

    @property
    def cells(self) -> dict[str, Run]:
        """Each cell's first-seed run (the one the ROC, the training curves and results.json use)."""
        return {method: runs[0] for method, runs in self.seeds.items()}

    @property
    def label(self) -> str:
        return {TEACHER: f"{self.model} (teacher)", REFERENCE: f"{self.model} (untrained)"}.get(self.role, self.model)


def teacher_label(run: Run, teacher: Run | None) -> str:
    """'<model> (<teacher run folder>)', or '<model> (<checkpoint>)' for a teacher outside the runs."""
    if teacher is not None:
        return f"{teacher.model} ({teacher.name})"
    ref = run.teacher_ref or {}
    return f"{ref.get('model', '?')} ({ref.get('checkpoint', 'teacher not recorded')})"


def _settings(run: Run) -> dict[str, Any]:
    return {k: v for k, v in run.config["config"].items() if k not in SEED_FREE}


def _put(cells: dict[str, list[Run]], run: Run, what: str) -> None:
    """Add ``run`` to its cell: as a further seed of the runs there, or refused as a conflict."""
    runs = cells.setdefault(run.method, [])
    for other in runs:
        differ = sorted(k for k in _settings(run).keys() | _settings(other).keys()
                        if _settings(run).get(k) != _settings(other).get(k))
        if differ or run.seed == other.seed:
            why = f"they differ in {', '.join(differ)}" if differ else f"both have seed {run.seed}"
            raise FacebenchError(
                f"two runs for {what} {METHODS[run.method][1]}: {other.path} and {run.path} ({why}); a report "
                "compares one run per model and method, or its seeds: move one out of --runs"
            )
    runs.append(run)
    runs.sort(key=lambda r: r.seed if r.seed is not None else -1)


def study_rows(runs: list[Run]) -> list[StudyRow]:
    """Group runs into Table 1 rows (see the module docstring); teachers first, then by model."""
    distill = [r for r in runs if r.is_distill]
    plain = [r for r in runs if not r.is_distill and not r.is_untrained]
    teachers = {r.path: find_teacher(r, runs) for r in distill}
    teacher_paths = {t.path for t in teachers.values() if t is not None}
    rows = [StudyRow(r.model, TEACHER, teacher_label(r, r), {"none": [r]}) for r in plain if r.path in teacher_paths]

    students: dict[tuple[str, str], dict[str, list[Run]]] = {}
    for run in distill:
        label = teacher_label(run, teachers[run.path])
        _put(students.setdefault((run.model, label), {}), run, f"{run.model} (teacher {label})")
    vanilla: dict[str, dict[str, list[Run]]] = {}
    for run in plain:
        if run.path not in teacher_paths:
            _put(vanilla.setdefault(run.model, {}), run, f"{run.model} (no teacher)")
    untrained: dict[str, dict[str, list[Run]]] = {}
    for run in runs:
        if run.is_untrained:
            _put(untrained.setdefault(run.model, {}), run, f"{run.model} (untrained)")

    alone: dict[str, list[list[Run]]] = {}
    for cells in students.values():
        if "none" in cells:
            alone.setdefault(cells["none"][0].model, []).append(cells["none"])
    used = set()
    for (model, label), cells in sorted(students.items()):
        if "none" not in cells and len(alone.get(model, [])) == 1:
            cells["none"] = alone[model][0]
        elif "none" not in cells and model in vanilla:
            cells["none"] = vanilla[model]["none"]
            used.add(model)
        rows.append(StudyRow(model, STUDENT, label, cells))
    rows += [StudyRow(m, VANILLA, NO_TEACHER, cells) for m, cells in sorted(vanilla.items()) if m not in used]
    rows += [StudyRow(m, REFERENCE, NO_TEACHER, cells) for m, cells in sorted(untrained.items())]
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
            plotted.append(PlottedRun(cell_name(row, method), method, row, run))
    return plotted


def cell_name(row: StudyRow, method: str) -> str:
    """How figures and the summary name a cell: model, method and teacher ('mobilenet SL KD from r18')."""
    if row.role in (TEACHER, REFERENCE):
        return row.label
    if method == "none" or row.teacher == NO_TEACHER:
        return f"{row.label} {METHODS[method][1]}"  # the student alone: no teacher to name
    return f"{row.label} {METHODS[method][1]} from {row.teacher.split(' (')[0]}"


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
        TAR_PCT: _pct(row.get(TAR_KEY)),
        "n_pairs": int(row["n_pairs"]),
    }


def _fmt(value: float, digits: int = 2) -> str:
    return "-" if math.isnan(value) else f"{value:.{digits}f}"


def seed_values(row: StudyRow, method: str, set_name: str, key: str = "acc_pct") -> np.ndarray:
    """``key`` of ``cell_values`` (default the k-fold accuracy, %) on ``set_name`` for each seed's run of a cell
    (those with a result)."""
    values = [cell_values(run, set_name) for run in row.seeds.get(method, [])]
    return np.array([v[key] for v in values if v is not None])


def cell_accuracy(row: StudyRow, method: str, set_name: str) -> float:
    """The accuracy Table 1 shows: the run's, or the mean over the cell's seeds; NaN without a result."""
    accuracies = seed_values(row, method, set_name)
    return float(accuracies.mean()) if accuracies.size else math.nan


KD_METHODS = [m for m in METHODS if m != "none"]


@dataclass
class VanillaTests:
    """Each KD cell against its row's Vanilla cell, by (row index, method, set); notes on cells without a test."""

    tests: dict[tuple[int, str, str], Comparison]
    notes: list[str]


def vanilla_tests(rows: list[StudyRow], sets: list[str]) -> VanillaTests:
    """Paired bootstrap and McNemar of each KD cell against its row's Vanilla cell, seed k against seed k (in
    ascending seed order; a cell's extra seeds stay out of the test)."""
    decisions: dict[tuple[Path, str], PairDecisions | FacebenchError] = {}

    def read(run: Run, set_name: str) -> PairDecisions:
        """The run's decisions (read once); FacebenchError saying why there are none."""
        if (run.path, set_name) not in decisions:
            try:
                decisions[run.path, set_name] = read_decisions(run.path, run.verify, set_name)
            except FacebenchError as error:
                decisions[run.path, set_name] = error
        found = decisions[run.path, set_name]
        if isinstance(found, FacebenchError):
            raise found
        return found

    found = VanillaTests({}, [])
    for k, row in enumerate(rows):
        for method in KD_METHODS:
            for set_name in sets:
                pairs = [(run, vanilla) for run, vanilla in zip(row.seeds.get(method, []), row.seeds.get("none", []))
                         if set_name in run.sets and set_name in vanilla.sets]  # fmt: skip
                if not pairs:
                    continue
                where = f"Table 1 shows no test of {cell_name(row, method)} against Vanilla on {set_name}"
                try:
                    ours = [read(run, set_name) for run, _ in pairs]
                    theirs = [read(vanilla, set_name) for _, vanilla in pairs]
                except FacebenchError as error:
                    found.notes.append(f"{where}: {error}")
                    continue
                differ = [(a, b) for a, b in zip(ours, theirs, strict=True) if not a.same_pairs(b)]
                if differ:
                    found.notes.append(f"{where}: {differ[0][0].source} and {differ[0][1].source} hold different "
                                       "pairs (pair ids or issame differ)")
                else:
                    found.tests[k, method, set_name] = compare(ours, theirs)
    return found


def difference_text(row: StudyRow, method: str, set_name: str, test: Comparison | None) -> str:
    """'+1.71 [-0.30, +3.60], p=0.09 *' ('*': beyond chance by both tests); with several seed pairs
    '+1.71 ± 0.40 (3 seed pairs) [..], p≤0.09', led by the difference of the means over all seeds when a
    cell has seeds the other lacks; '-' without both cells, 'n/a' without a test."""
    if "none" not in row.seeds or method not in row.seeds or set_name not in row.cells[method].sets:
        return "-"
    if test is None:
        text = "n/a"
    elif len(test.seeds) == 1:
        text = f"{test.diff_pp:+.2f} [{test.low_pp:+.2f}, {test.high_pp:+.2f}], p={test.p:.2g}"
    else:
        text = (f"{test.diff_pp:+.2f} ± {test.seed_std_pp:.2f} ({len(test.seeds)} seed pairs) "
                f"[{test.low_pp:+.2f}, {test.high_pp:+.2f}], p≤{test.p:.2g}")
    text += " *" if test is not None and test.significant else ""
    counts = {len(row.seeds["none"]), len(row.seeds[method])}
    if len(counts) > 1 or (test is not None and len(test.seeds) not in counts):
        seeds_diff = cell_accuracy(row, method, set_name) - cell_accuracy(row, "none", set_name)
        paired = "" if test is None else f"{len(test.seeds)} seed pair{'s' if len(test.seeds) > 1 else ''} "
        text = f"{seeds_diff:+.2f} over seeds; {paired}{text}"
    return text


def table1(rows: list[StudyRow], sets: list[str],
           tests: VanillaTests) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(CSV rows: numbers in percent plus the run folders behind each method, Markdown rows: formatted cells)."""
    csv_rows, md_rows = [], []
    for k, row in enumerate(rows):
        record: dict[str, Any] = {"model": row.label, "role": row.role, "teacher": row.teacher}
        shown: dict[str, str] = {"model": row.label, "teacher": row.teacher}
        for method, (column, _) in METHODS.items():
            record[f"run_{column}"] = ";".join(str(r.path) for r in row.seeds.get(method, []))
        for set_name in sets:
            for method, (column, title) in METHODS.items():
                values = (cell_values(row.cells[method], set_name) if method in row.cells else None) or NO_RESULT
                for key, value in values.items():
                    record[f"{set_name}_{column}_{key}"] = value
                accuracies = seed_values(row, method, set_name)
                record[f"{set_name}_{column}_n_seeds"] = accuracies.size
                record[f"{set_name}_{column}_seeds_acc_mean_pct"] = cell_accuracy(row, method, set_name)
                spread = sample_std(accuracies)
                record[f"{set_name}_{column}_seeds_acc_std_pct"] = spread
                if accuracies.size > 1:
                    shown[f"{set_name} {title}"] = f"{accuracies.mean():.2f} ± {spread:.2f} ({accuracies.size} seeds)"
                else:
                    accuracy = values["acc_pct"]
                    shown[f"{set_name} {title}"] = (
                        "-" if math.isnan(accuracy) else f"{accuracy:.2f} ± {values['acc_std_pct']:.2f}"
                    )
            for method in KD_METHODS:
                column, title = METHODS[method]
                test = tests.tests.get((k, method, set_name))
                shown[f"{set_name} {title} - Vanilla"] = difference_text(row, method, set_name, test)
                numbers = {} if test is None else {
                    "diff_pp": test.diff_pp, "low_pp": test.low_pp, "high_pp": test.high_pp,
                    "n_seed_pairs": len(test.seeds), "seed_std_pp": test.seed_std_pp,
                    "mcnemar_b": sum(t.b for t in test.seeds), "mcnemar_c": sum(t.c for t in test.seeds),
                    "mcnemar_p": test.p}  # fmt: skip
                for key in ("diff_pp", "low_pp", "high_pp", "n_seed_pairs", "seed_std_pp", "mcnemar_b", "mcnemar_c",
                            "mcnemar_p"):
                    record[f"{set_name}_{column}_vs_vanilla_{key}"] = numbers.get(key, math.nan)
                record[f"{set_name}_{column}_vs_vanilla_significant"] = test is not None and test.significant
            for method, (column, title) in METHODS.items():
                tars = seed_values(row, method, set_name, TAR_PCT)
                spread = sample_std(tars)
                record[f"{set_name}_{column}_seeds_tar_mean_pct"] = float(tars.mean()) if tars.size else math.nan
                record[f"{set_name}_{column}_seeds_tar_std_pct"] = spread
                shown[f"{set_name} TAR@FAR=1e-3 {title}"] = (
                    f"{tars.mean():.2f} ± {spread:.2f}" if tars.size > 1 and not np.isnan(tars).any()
                    else _fmt(record[f"{set_name}_{column}_tar_pct_at_far_1e-03"]))  # fmt: skip
        csv_rows.append(record)
        md_rows.append(shown)
    return csv_rows, md_rows


def significance_lines(rows: list[StudyRow], tests: VanillaTests) -> list[str]:
    """One sentence per KD method: whether it beat Vanilla beyond chance (both tests), cell by cell."""
    lines = []
    for method in KD_METHODS:
        title = METHODS[method][1]
        found = [(rows[k], s, t) for (k, m, s), t in tests.tests.items() if m == method]
        if not found:
            lines.append(f"{title}: no paired test (no {title} run with a Vanilla run and scores.csv beside it).")
            continue
        parts = []
        for row, set_name, test in found:
            verdict = ("beat Vanilla beyond chance" if test.significant and test.diff_pp > 0 else
                       "fell below Vanilla beyond chance" if test.significant else
                       "did not differ from Vanilla beyond chance")
            mcnemar = (f"McNemar p={test.p:.2g}" if len(test.seeds) == 1 else
                       f"{len(test.seeds)} seed pairs, McNemar p " + ", ".join(f"{t.p:.2g}" for t in test.seeds))
            parts.append(f"{cell_name(row, method)} {verdict} on {set_name} ({test.diff_pp:+.2f} pp "
                         f"[{test.low_pp:+.2f}, {test.high_pp:+.2f}], {mcnemar})")
        lines.append(f"{title}: " + "; ".join(parts) + ".")
    return lines


def below_untrained(rows: list[StudyRow], sets: list[str]) -> list[str]:
    """A flag for each trained cell whose accuracy is below the untrained reference of its architecture."""
    references = {row.model: row for row in rows if row.role == REFERENCE}
    flags = []
    for row in rows:
        reference = references.get(row.model)
        if reference is None or row.role == REFERENCE:
            continue
        for method in row.seeds:
            for set_name in sets:
                accuracy, floor = cell_accuracy(row, method, set_name), cell_accuracy(reference, "none", set_name)
                if accuracy < floor:  # False when either is NaN
                    flags.append(f"{cell_name(row, method)} ({accuracy:.2f} %) is below {reference.label} "
                                 f"({floor:.2f} %) on {set_name}: this training left it worse than random weights")
    return list(dict.fromkeys(flags))  # a Vanilla cell shared by two teachers' rows is flagged once


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


def operating_table(rows: list[StudyRow]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(CSV rows, Markdown rows) of Table 1's operating points: one per run (every seed) and all-pairs set; a KD
    run's FNMR minus its Vanilla's (seed k with seed k, as the accuracy differences pair them) with the paired
    identity-bootstrap interval, where both runs saved the set's scores."""
    csv_rows, md_rows = [], []
    for row in rows:
        for method in (m for m in METHODS if m in row.seeds):  # the table's column order
            runs = row.seeds[method]
            vanilla = row.seeds.get("none", []) if method in KD_METHODS else []
            for k, run in enumerate(runs):
                for verify_row in run.all_pairs:
                    who = {"model": row.label, "teacher": row.teacher, "method": METHODS[method][1],
                           "seed": "-" if run.seed is None else str(run.seed)}  # fmt: skip
                    name = cell_name(row, method) + ("" if run.seed is None else f" seed {run.seed}")
                    points = paired_against(vanilla[k].path, run.path, verify_row["set"]) if k < len(vanilla) else []
                    csv_rows.append({"name": name} | who | operating_record(verify_row)
                                    | paired_fields(points, "vs_vanilla_") | {"run": str(run.path)})  # fmt: skip
                    md_rows.append(who | operating_cells(verify_row) | {
                        f"- Vanilla @{fmr}, pp": paired_cell(point_at(points, fmr), "own") for fmr in REPORTED_FMRS})
    return csv_rows, md_rows
