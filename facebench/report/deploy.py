"""The deploy report (``bench --preset deploy``): each variant's accuracy and cost, against the fp32 original.

Reads, under the runs folder, every variant folder (``variant.json`` from the bench: name,
title, runtime, precision, role, order) with its ``verify.json`` and ``profile-b<N>/profile.json``
files, and writes into ``out``: compression.md/.csv (LFW accuracy and TAR@FAR=1e-3 with their
difference to the original, size on disk, latency at each profiled batch and the speed-up over
the original at that batch), table2.md/.csv (every profile row, runtime and precision named),
figure_deploy.png/.svg (accuracy against batch-1 latency), results.json (for ``facebench
check``) and summary.md. Nothing is recomputed: every number is read from those files, except the paired
FNMR differences, bootstrapped from each variant's saved all-pairs scores (``pairs_<set>.npz``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError
from facebench.eval.paired_points import PAIRED_RULE
from facebench.eval.plots import _pyplot
from facebench.fileio import atomic_path, read_json, write_json_atomic, write_text_atomic
from facebench.report.markdown import text_table
from facebench.report.operating import (
    CAPTION,
    REPORTED_FMRS,
    all_pairs_rows,
    operating_entries,
    operating_cells,
    operating_record,
    paired_against,
    paired_cell,
    paired_fields,
    point_at,
)
from facebench.report.practical import latency_entries, table2
from facebench.report.runs import TAR_KEY, ProfileFile
from facebench.report.summary import bench_section, machine_line
from facebench.runfolder import BENCH_LOG, PROFILE, VARIANT, VERIFY, RunFolder

# a variant's role (variant.json "role"): the fp32 original the differences refer to, a variant of it, another
# pretrained model (verified, no differences), or an architecture timed only
ORIGINAL, VARIANT_OF_ORIGINAL, REFERENCE, LATENCY_ONLY = "original", "variant", "reference", "latency only"
SET = "lfw"


@dataclass
class VariantResult:
    """One variant folder, read."""

    path: Path
    info: dict[str, Any]  # variant.json
    verify: dict[str, Any] | None
    profiles: dict[int, ProfileFile] = field(default_factory=dict)  # batch -> profile file

    @property
    def row(self) -> dict[str, Any] | None:
        """Its verify.json row of the LFW set (the first set when none is called lfw)."""
        if self.verify is None:
            return None
        rows = self.verify["rows"]
        return next((r for r in rows if r["set"] == SET), rows[0])

    @property
    def operating_rows(self) -> list[dict[str, Any]]:
        """Its verify.json rows of the all-pairs protocol (clean and degraded folder sets)."""
        return all_pairs_rows(self.verify)

    def latency(self, batch: int) -> tuple[float, float]:
        """(mean, std) ms of its profile row at ``batch``, NaN when not profiled."""
        profile = self.profiles.get(batch)
        if profile is None:
            return math.nan, math.nan
        row = profile.rows[0]
        return float(row["latency_ms_mean"]), float(row["latency_ms_std"])


def is_deploy_runs(runs_root: Path) -> bool:
    """True when ``runs_root`` holds variant folders (a deploy bench's runs)."""
    return runs_root.is_dir() and any(runs_root.glob(f"*/{VARIANT}"))


def read_variants(runs_root: Path) -> list[VariantResult]:
    """Every variant folder under ``runs_root``, in the bench's order."""
    found = []
    for info_path in runs_root.glob(f"*/{VARIANT}"):
        folder = info_path.parent
        info = read_json(info_path)
        verify = RunFolder(folder).read_verify() if (folder / VERIFY).is_file() else None
        profiles = {}
        for path in sorted(folder.glob(f"profile-b*/{PROFILE}")):
            profile = ProfileFile.load(path)
            profiles[int(profile.rows[0]["batch"])] = profile
        found.append(VariantResult(folder, info, verify, profiles))
    if not found:
        raise FacebenchError(f"--runs {runs_root}: no variant folders (variant.json) under it")
    return sorted(found, key=lambda v: (v.info.get("order", 0), v.info["name"]))


def _pct(value: Any) -> float:
    return math.nan if value is None else 100 * float(value)


def _cell(value: float, digits: int, signed: bool = False) -> str:
    return "-" if math.isnan(value) else f"{value:+.{digits}f}" if signed else f"{value:.{digits}f}"


def compression_rows(variants: list[VariantResult]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(CSV rows, Markdown rows) of the compression table; differences and speed-ups against the ORIGINAL row."""
    original = next((v for v in variants if v.info["role"] == ORIGINAL), None)
    base = original.row if original else None
    batches = sorted({b for v in variants for b in v.profiles})
    csv_rows, md_rows = [], []
    for variant in variants:
        row = variant.row
        acc, std = (_pct(row["accuracy"]), _pct(row["accuracy_std"])) if row else (math.nan, math.nan)
        tar = _pct(row.get(TAR_KEY)) if row else math.nan
        same_model = base is not None and variant.info["role"] in (ORIGINAL, VARIANT_OF_ORIGINAL)
        d_acc = acc - _pct(base["accuracy"]) if same_model and row else math.nan
        d_tar = tar - _pct(base.get(TAR_KEY)) if same_model and row else math.nan
        profile = next(iter(variant.profiles.values()), None)
        size = float(profile.rows[0]["size_mb"]) if profile else math.nan
        record: dict[str, Any] = {
            "variant": variant.info["name"], "title": variant.info["title"], "runtime": variant.info["runtime"],
            "precision": variant.info["precision"], "role": variant.info["role"], "lfw_accuracy_pct": acc,
            "lfw_accuracy_std_pct": std, "delta_accuracy_pp": d_acc, "tar_at_far_1e-3_pct": tar,
            "delta_tar_pp": d_tar, "size_mb": size, "n_pairs": row["n_pairs"] if row else None,
        }  # fmt: skip
        md = {"variant": variant.info["title"], "runtime": variant.info["runtime"],
              "precision": variant.info["precision"],
              "LFW acc. % (± std)": "-" if math.isnan(acc) else f"{acc:.2f} ± {std:.2f}",
              "Δ acc. pp": _cell(d_acc, 2, signed=True), "TAR@FAR=1e-3 %": _cell(tar, 2),
              "Δ TAR pp": _cell(d_tar, 2, signed=True)} | ({"size MB": _cell(size, 2)} if batches else {})  # fmt: skip
        for batch in batches:
            mean, spread = variant.latency(batch)
            base_mean = original.latency(batch)[0] if original else math.nan
            speedup = base_mean / mean if not math.isnan(mean) else math.nan
            record |= {f"latency_b{batch}_ms": mean, f"latency_b{batch}_std_ms": spread, f"speedup_b{batch}": speedup}
            md[f"batch {batch} ms (± std)"] = "-" if math.isnan(mean) else f"{mean:.2f} ± {spread:.2f}"
            md[f"speed-up b{batch}"] = "-" if math.isnan(speedup) else f"{speedup:.2f}x"
        record["source"] = str(variant.path)
        csv_rows.append(record)
        md_rows.append(md)
    return csv_rows, md_rows


def operating_rows(variants: list[VariantResult]) -> tuple[list[dict[str, Any]], list[dict[str, str]]]:
    """(CSV rows, Markdown rows) of the operating-point table: one per variant and all-pairs set; a variant of the
    original gets the paired FNMR differences to it on the same set (facebench.eval.paired_points) where both
    folders hold the set's saved scores."""
    original = next((v for v in variants if v.info["role"] == ORIGINAL), None)
    csv_rows, md_rows = [], []
    for variant in variants:
        paired = original is not None and variant.info["role"] == VARIANT_OF_ORIGINAL
        for row in variant.operating_rows:
            record = {"variant": variant.info["name"], "title": variant.info["title"], **operating_record(row)}
            md = {"variant": variant.info["title"], **operating_cells(row)}
            points = paired_against(original.path, variant.path, row["set"]) if paired else []
            record |= paired_fields(points)
            for fmr in REPORTED_FMRS:
                md[f"Δ FNMR@{fmr} own t, pp"] = paired_cell(point_at(points, fmr), "own")
            point = point_at(points, REPORTED_FMRS[-1])
            md[f"Δ FNMR@{REPORTED_FMRS[-1]} at original's t, pp"] = paired_cell(point, "reference")
            md["FMR at original's t"] = "-" if point is None else _cell(point.fmr_at_reference_threshold, 7)
            csv_rows.append(record)
            md_rows.append(md)
    return csv_rows, md_rows


def compression_markdown(md_rows: list[dict[str, str]], variants: list[VariantResult],
                         operating_md: list[dict[str, str]] | None = None) -> str:
    original = next((v for v in variants if v.info["role"] == ORIGINAL), None)
    pairs = sorted({v.row["n_pairs"] for v in variants if v.row})
    settings = next((v.profiles[b].data["meta"] for v in variants for b in sorted(v.profiles)), {})
    return (
        "# Compression table: accuracy and cost of each deployable variant\n\n"
        f"LFW: {', '.join(map(str, pairs))} pairs, insightface 10-fold protocol, no flip; accuracy mean ± std over "
        "the folds. Δ: difference to the fp32 original"
        + (f" ({original.info['title']})" if original else "") + " on the same pairs, for variants of that model "
        "only. TAR@FAR=1e-3 over all pairs pooled. "
        + ("Size: the file on disk (torch rows: the state_dict in that dtype), MB = 1e6 bytes. Latency: ms per "
           "forward pass of one batch of random 112x112 input, mean ± std "
           f"(sample), {settings.get('threads', '?')} CPU threads, on {settings.get('device', '?')}; speed-up = "
           "the original's latency / this row's at the same batch. Untrained zoo rows are latency only."
           if settings else "No variant was profiled: size and latency are not part of this table.") + "\n\n"
        + text_table(md_rows)
        + (f"\n\n## Operating points\n\n{CAPTION} Δ: a variant's FNMR minus the original's on the same set, "
           f"at each run's own threshold for that FMR (own t) and at the original's threshold (what a deployment "
           f"calibrated on the original keeps; the variant's FMR there beside it). {PAIRED_RULE}\n\n"
           f"{text_table(operating_md)}" if operating_md else "")
        + "\n\nFolder behind each row:\n\n"
        + "\n".join(f"- {v.info['title']}: `{v.path}`" for v in variants) + "\n"
    )


def figure_deploy(variants: list[VariantResult], paths: list[Path]) -> None:
    """LFW accuracy against batch-1 latency (log x), one labelled point per verified variant."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(12, 5))
    for k, variant in enumerate(v for v in variants if v.row and 1 in v.profiles):
        acc, std = _pct(variant.row["accuracy"]), _pct(variant.row["accuracy_std"])
        latency = variant.latency(1)[0]
        ax.errorbar(latency, acc, yerr=std, fmt="o", color=plt.cm.tab10(k % 10), capsize=3,
                    label=f"{variant.info['title']}: {acc:.2f}%, {latency:.2f} ms")  # fmt: skip
    ax.set_xscale("log")
    ax.set_xlabel("latency at batch 1, ms (log scale)")
    ax.set_ylabel("LFW accuracy (%), bars: std over folds")
    ax.set_title("Deployable variants: LFW accuracy vs batch-1 latency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize="small", borderaxespad=0)
    fig.tight_layout()
    for path in paths:
        with atomic_path(path) as tmp:
            fig.savefig(tmp, dpi=120, bbox_inches="tight")
    plt.close(fig)


def build_deploy_report(runs_root: Path, out: Path) -> list[Path]:
    """Read every variant under ``runs_root`` and write the deploy report into ``out`` (module docstring)."""
    import pandas as pd

    from facebench.provenance import environment

    variants = read_variants(runs_root)
    csv_rows, md_rows = compression_rows(variants)
    op_csv, op_md = operating_rows(variants)
    profiles = [p for v in variants for p in v.profiles.values()]
    t2_csv, t2_md = table2(profiles, [])
    bench_path = runs_root / BENCH_LOG
    bench = read_json(bench_path) if bench_path.is_file() else None
    env = environment()
    out.mkdir(parents=True, exist_ok=True)
    paths = [out / "compression.md", out / "compression.csv"]
    write_text_atomic(paths[0], compression_markdown(md_rows, variants, op_md))
    tables = [(paths[1], csv_rows)] + ([(out / "operating.csv", op_csv)] if op_csv else [])
    if profiles:  # Table 2 and the latency figure: only where the bench profiled
        write_text_atomic(out / "table2.md", "# Table 2: practical metrics of every variant\n\n" + text_table(t2_md)
                          + "\n")  # fmt: skip
        tables.append((out / "table2.csv", t2_csv))
        paths += [out / "table2.md", out / "figure_deploy.png", out / "figure_deploy.svg"]
        figure_deploy(variants, paths[-2:])
    for path, rows in tables:
        with atomic_path(path) as tmp:
            pd.DataFrame(rows).to_csv(tmp, index=False)
    paths += [path for path, _ in tables[1:]]
    results = {"meta": {"runs": str(runs_root), "environment": env,
                        "units": "accuracy and TAR in percent; latency in ms per forward pass of one batch"},
               "accuracy": [{"model": r["title"], "teacher": "-", "method": "deployed", "set": SET,
                             "accuracy_pct": r["lfw_accuracy_pct"],
                             "tar_pct_at_far_1e-03": r["tar_at_far_1e-3_pct"], "n_pairs": r["n_pairs"],
                             "source": r["source"]} for r in csv_rows if r["n_pairs"]],
               "operating_points": operating_entries(op_csv, "title"),
               "latency": latency_entries(profiles)}  # fmt: skip
    write_json_atomic(out / "results.json", results)
    summary = "\n".join([
        "# facebench deploy report\n",
        f"Made by `{env.get('command')}` at {env.get('time_utc')} on {machine_line(env)}.\n",
        "- [Compression table](compression.md) ([CSV](compression.csv)"
        + (", operating points: [CSV](operating.csv)" if op_csv else "") + ")\n"
        + ("- [Table 2: practical metrics of every variant](table2.md) ([CSV](table2.csv))\n"
           "- [Figure: LFW accuracy vs batch-1 latency](figure_deploy.png) ([SVG](figure_deploy.svg))\n"
           if profiles else "")
        + "- [Results for facebench check](results.json)\n",
        bench_section(bench),
    ])  # fmt: skip
    write_text_atomic(out / "summary.md", summary)
    return [*paths, out / "results.json", out / "summary.md"]
