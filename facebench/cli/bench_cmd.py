"""``facebench bench``: the study end to end (teacher, students x methods, verify, profile, report), resumable."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console
from facebench.cli.option_types import BenchPreset


@command("bench", out_dirs=("out", "report"))
def bench(
    preset: BenchPreset = typer.Option("cpu-small", help="cpu-small (about 45 min on 2 CPU cores), cpu-real "
                                       "(pretrained teacher, 3 seeds, about 1 h on 2 CPU cores), paper (the "
                                       "study, GPU), deploy (pretrained MobileFaceNet as ONNX/OpenVINO/int8 "
                                       "variants, about 30 min) or detectors (mtcnn, yunet, retinaface, haar on "
                                       "LFW: cost and what their crops do to verification, about 20 min)."),
    data: str | None = typer.Option(None, help="Training data instead of the preset's (identity folders or train.rec)."),
    val: list[str] | None = typer.Option(None, help="Verification sets NAME=PATH instead of the preset's; repeatable."),
    out: Path | None = typer.Option(None, help="Runs folder; steps already complete there are skipped, a "
                                    "half-trained run resumed.", show_default="runs/<preset>"),
    report: Path = typer.Option(Path("reports"), help="Folder for the report (tables, figure, summary)."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Show the plan, where it stands and the equivalent "
                                 "commands; run nothing."),
) -> None:
    """Run the study (train the teacher, distil each student with none/kd/adv/emb, verify, profile, report), with
    --preset deploy measure a pretrained model's deployable variants (export, verify, profile, report), or with
    --preset detectors each face detector (detect and time on LFW, verify the crops, report)."""
    from facebench.allocator import tune_allocator
    from facebench.bench.deploy import DeployPreset, check_deploy_inputs
    from facebench.bench.detector_table import DetectorPreset, check_detector_inputs
    from facebench.bench.plan import plan_for, run_bench, with_overrides
    from facebench.bench.presets import get_preset
    from facebench.bench.steps import ReportStep
    from facebench.errors import FacebenchError
    from facebench.eval.verify import parse_named_pairs

    tune_allocator()
    chosen = get_preset(preset)
    runs = out if out is not None else Path("runs") / chosen.name
    if isinstance(chosen, DeployPreset | DetectorPreset):
        if data or val:
            raise FacebenchError(f"--preset {preset} takes no --data or --val (it verifies on its LFW folder)")

        def check(_: list[str]) -> None:
            if isinstance(chosen, DeployPreset):
                check_deploy_inputs(chosen, runs)
            else:
                check_detector_inputs(chosen)

        steps = plan_for(chosen, runs, report)
        run_bench(steps, chosen, runs, console, dry_run=dry_run, check=check)
    else:
        chosen = with_overrides(chosen, data, parse_named_pairs(val) if val else None)
        steps = plan_for(chosen, runs, report)
        run_bench(steps, chosen, runs, console, dry_run=dry_run)
    if not dry_run:  # the report's front page: summary.md (study, deploy), else its first Markdown file
        pages = [path for step in steps if isinstance(step, ReportStep) for path in step.written if path.suffix == ".md"]
        front = next((p for p in pages if p.name == "summary.md"), pages[0] if pages else report)
        console.print(f"report: {front}", highlight=False)
