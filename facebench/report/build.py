"""``facebench report`` as a library call: run folders in, Tables 1-2, Figure 1, ROC, summary out.

Outputs in ``out``: table1.md/.csv, table2.md/.csv, figure1.png/.svg, roc.png (and
roc_<set>.png for further sets), results.json (what ``facebench check`` compares) and
summary.md. Everything is read and checked before the first file is written.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from facebench.errors import FacebenchError
from facebench.eval.paired_points import PAIRED_RULE
from facebench.eval.plots import plot_roc
from facebench.fileio import atomic_path, read_json, write_json_atomic, write_text_atomic
from facebench.report.figures import figure1, roc_sets, training_curves
from facebench.report.markdown import text_table
from facebench.report.operating import CAPTION, operating_entries
from facebench.report.practical import gflops_by_model, latency_entries, table2
from facebench.report.runs import METHODS, Discovery, discover
from facebench.report.significance import BOOTSTRAP_RESAMPLES, BOOTSTRAP_SEED
from facebench.report.study import (
    StudyRow,
    accuracy_entries,
    below_untrained,
    operating_table,
    primary_set,
    set_names,
    significance_lines,
    study_rows,
    table1,
    vanilla_tests,
)
from facebench.report.summary import summary_markdown
from facebench.runfolder import BENCH_LOG

RESULTS_NAME = "results.json"


@dataclass
class Report:
    """What was written and what could not be shown."""

    paths: list[Path]
    notes: list[str]
    rows: list[StudyRow]


def write_csv(path: Path, rows: list[dict[str, Any]]) -> None:
    with atomic_path(path) as tmp:
        pd.DataFrame(rows).to_csv(tmp, index=False)


def results(rows: list[StudyRow], found: Discovery, runs_root: Path, environment: dict[str, Any]) -> dict[str, Any]:
    """results.json / baseline.json: every accuracy and latency entry with its source file."""
    return {
        "meta": {"runs": str(runs_root), "environment": environment,
                 "units": "accuracy and TAR in percent; latency in ms per forward pass of one batch"},
        "accuracy": accuracy_entries(rows),
        "latency": latency_entries(found.profiles),
    }  # fmt: skip


def table1_markdown(md_rows: list[dict[str, str]], rows: list[StudyRow], sets: list[str]) -> str:
    pairs = {s: sorted({r.sets[s]["n_pairs"] for row in rows for r in row.cells.values() if s in r.sets})
             for s in sets}  # fmt: skip
    sources = [f"- {row.label} {title}: " + ", ".join(f"`{r.path}`" for r in row.seeds[m])
               for row in rows for m, (_, title) in METHODS.items() if m in row.seeds]  # fmt: skip
    return (
        "# Table 1: verification accuracy (%)\n\n"
        "Accuracy: mean ± std over the folds of each set (insightface k-fold protocol, `facebench verify`); "
        "for a cell with several seeds (runs differing only in `config.seed`), mean ± std (ddof=1) over the "
        "seeds of their k-fold accuracies. TAR@FAR=1e-3 in % (over the whole set; with several seeds mean ± std "
        "over them), '-' where the set has fewer than 1000 mismatched pairs. '-' in an accuracy cell: no run for "
        "that model and method. A row '<model> (untrained)' is "
        "that architecture with seeded random weights (`facebench verify --model <model>`), the chance "
        "reference.\n\n"
        "'<method> - Vanilla': the method's accuracy minus the same row's Vanilla accuracy in percentage "
        "points, recomputed pair by pair from each run's scores.csv at its own per-fold thresholds "
        "(verify.json `fold_threshold_sq_l2`: the decisions behind its k-fold accuracy, checked to reproduce "
        f"it), with the 95 % percentile interval of a **paired bootstrap** over pairs ({BOOTSTRAP_RESAMPLES} "
        f"resamples, numpy seed {BOOTSTRAP_SEED}, the same resample for both runs) and the two-sided p of "
        "**McNemar's exact test** on the pairs the two runs decide differently. '*': beyond chance by both "
        "(the interval excludes 0 and p < 0.05). With several seeds, seed k of the method is paired with seed "
        "k of Vanilla (ascending seeds): the difference is that of the seed-mean accuracies, ± the std (ddof=1) "
        "of the seed pairs' differences, its interval a bootstrap over pairs of the per-pair correctness "
        "averaged over the seeds, and p≤ the largest of the seed pairs' McNemar p; '*' then also needs every "
        "seed pair's difference on the same side with p < 0.05. A cell with seeds the other lacks leads with the "
        "difference of the means over all its seeds. 'n/a': no test "
        "(summary.md's notes say why).\n\n"
        + "Pairs per set: " + "; ".join(f"{s} {', '.join(map(str, n))}" for s, n in pairs.items()) + "\n\n"
        + text_table(md_rows) + "\n\nRun folder behind each cell:\n\n" + "\n".join(sources) + "\n"
    )


def table2_markdown(md_rows: list[dict[str, Any]], missing: list[str]) -> str:
    text = (
        "# Table 2: practical metrics\n\n"
        "Counts at batch 1, 3x112x112, fp32 (params; size of the fp32 state_dict, MB = 1e6 bytes; GMACs by "
        "ptflops; GFLOPs by torch's FlopCounterMode). Latency per forward pass of one batch, with the device, "
        "dtype, batch and CPU threads of each row; memory as labelled (MB = 1e6 bytes).\n\n"
    )
    text += text_table(md_rows) if md_rows else "No profile.json found."
    if missing:
        text += "\n\nNot profiled: " + ", ".join(missing) + " (run `facebench profile --models ... --out DIR` "
        text += "and pass `--profile DIR`)."
    return text + "\n"


def build_any_report(runs_root: Path, out: Path, extra_profiles: list[Path] | None = None) -> Report:
    """The deploy report for a deploy bench's runs (variant folders), the detector table for a detector bench's
    (detect-* folders), else the study report."""
    from facebench.report.deploy import build_deploy_report, is_deploy_runs
    from facebench.report.detectors import build_detector_report, is_detector_runs

    for is_kind, build in ((is_deploy_runs, build_deploy_report), (is_detector_runs, build_detector_report)):
        if is_kind(runs_root):
            if extra_profiles:
                raise FacebenchError(f"--profile: the report of {runs_root} reads its own profiles; drop --profile")
            return Report(build(runs_root, out), [], [])
    return build_report(runs_root, out, extra_profiles)


def build_report(runs_root: Path, out: Path, extra_profiles: list[Path] | None = None) -> Report:
    """Read every run and profile under ``runs_root`` and write the report files into ``out``."""
    from facebench.provenance import environment

    found = discover(runs_root, extra_profiles)
    if not found.runs:
        raise FacebenchError(f"--runs {runs_root}: no run folders (config.json + verify.json) under it")
    rows = study_rows(found.runs)
    sets = set_names(rows)
    models = list(dict.fromkeys(r.model for r in rows))
    tests = vanilla_tests(rows, sets)
    t1_csv, t1_md = table1(rows, sets, tests)
    op_csv, op_md = operating_table(rows)
    t2_csv, t2_md = table2(found.profiles, models)
    gflops = gflops_by_model(found.profiles)
    profiled = {row["model"] for profile in found.profiles for row in profile.rows}
    missing = [m for m in models if m not in profiled]
    bench_path = runs_root / BENCH_LOG
    bench = read_json(bench_path) if bench_path.is_file() else None
    env = environment()
    notes = list(found.skipped) + tests.notes + [f"Table 2 lacks {m}: no profile row for it" for m in missing]
    findings = significance_lines(rows, tests) + below_untrained(rows, sets)
    main_set = primary_set(sets)
    rocs = {s: roc_sets(rows, s) for s in sets}  # read every scores.csv before writing anything

    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "table1.md", out / "table1.csv", out / "table2.md", out / "table2.csv"]
    write_text_atomic(paths[0], table1_markdown(t1_md, rows, sets)
                      + (f"\n## Operating points\n\n{CAPTION} One line per run (each seed). '- Vanilla': a KD "
                         "run's FNMR minus that of the Vanilla run with the same seed index, each at its own "
                         f"threshold, in pp. {PAIRED_RULE}\n\n{text_table(op_md)}\n" if op_md else ""))  # fmt: skip
    write_csv(paths[1], t1_csv)
    if op_csv:
        write_csv(out / "table1_operating.csv", op_csv)
        paths.append(out / "table1_operating.csv")
    write_text_atomic(paths[2], table2_markdown(t2_md, missing))
    write_csv(paths[3], t2_csv)
    figures = [out / "figure1.png", out / "figure1.svg"]
    notes += figure1(rows, gflops, main_set, figures)
    paths += figures
    files = {"Table 1: verification accuracy": "table1.md", "Table 1 (CSV, run folder per cell)": "table1.csv",
             "Table 2: practical metrics": "table2.md", "Table 2 (CSV, source file per row)": "table2.csv",
             f"Figure 1: {main_set} accuracy vs GFLOPs": "figure1.png", "Figure 1 (SVG)": "figure1.svg"}
    written, curve_notes = training_curves(rows, out / "curves.png")
    notes += curve_notes
    if written:
        paths.append(out / "curves.png")
        files["Training curves (ArcFace loss of every run)"] = "curves.png"
    for set_name, (scored, left_out) in rocs.items():
        notes += left_out
        if scored:
            name = "roc.png" if set_name == main_set else f"roc_{set_name}.png"
            plot_roc(scored, out / name, f"every run on {set_name}")
            paths.append(out / name)
            files[f"ROC of every run on {set_name}"] = name
    write_json_atomic(out / RESULTS_NAME, results(rows, found, runs_root, env) | (
        {"operating_points": operating_entries(op_csv, "name")} if op_csv else {}))
    files[f"Results for facebench check ({RESULTS_NAME})"] = RESULTS_NAME
    paths.append(out / RESULTS_NAME)
    summary = out / "summary.md"
    write_text_atomic(summary, summary_markdown(report_environment=env, runs=found.runs, profiles=found.profiles,
                                                files=files, notes=notes, bench=bench, findings=findings))
    paths.append(summary)
    return Report(paths, notes, rows)

