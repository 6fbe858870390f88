"""``facebench bench`` as library calls: a preset becomes a list of steps, run in order, resumable.

Order (the study's): train the teacher -> vanilla students (``distill --method none``) -> SL
KD -> ADV KD -> EMB KD, each run verified as soon as it is trained -> each external teacher
(dlib) verified, then distilled into each student with EMB KD -> each student architecture
verified untrained (seeded random weights: the reference row that says whether training
helped at all) -> profile -> report.
Steps whose folder is complete are skipped, a half-trained run is resumed. ``bench.json``
in the runs folder logs each step's status and wall time (summed over bench sessions) and
is rewritten after every step, so a report made at any point says how long it took.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from facebench.bench.deploy import DeployPreset
from facebench.bench.detector_table import DetectorPreset
from facebench.bench.presets import Preset
from facebench.bench.steps import (
    DONE,
    PARTIAL,
    AlignStep,
    ProfileStep,
    ReportStep,
    Step,
    TrainingStep,
    VerifyStep,
)
from facebench.errors import FacebenchError
from facebench.fileio import read_json, write_json_atomic
from facebench.runfolder import BENCH_LOG, CHECKPOINT
from facebench.runlock import FolderLock

RUNNING, RAN, FAILED, INTERRUPTED = "running", "ran", "failed", "interrupted"


def with_overrides(preset: Preset, data: str | None, verify_sets: dict[str, str] | None) -> Preset:
    """The preset with the user's --data / --val in place of its defaults."""
    return replace(preset, data=data or preset.data, verify_sets=verify_sets or preset.verify_sets)


@dataclass(frozen=True)
class Inputs:
    """Where the plan's steps read their faces: the preset's own, or the copies its AlignSteps write."""

    data: str
    align: str  # how training and verification crop faces that are not 112x112
    images_root: str | None  # --images-root of every verification
    steps: list[Step]  # the AlignSteps that write the copies (none without ``prealign``)


def plan_inputs(preset: Preset, out: Path) -> Inputs:
    """With ``preset.prealign``: align the training data and the verification set's photos once into
    ``out``/aligned/ (faces aligned once, not on every epoch); otherwise the preset's data as it is."""
    if preset.prealign is None:
        return Inputs(preset.data, preset.align, None, [])
    if not Path(preset.data).is_dir() and Path(preset.data).suffix == ".rec":
        raise FacebenchError(f"--preset {preset.name} aligns its training data first: --data must be a folder of "
                             f"identity folders, not {preset.data}")
    if preset.validate_in_loop:
        raise FacebenchError(f"--preset {preset.name}: in-loop validation reads the original photos, not the aligned "
                             "copies; set validate_in_loop=False with prealign")
    if len(preset.verify_sets) != 1:
        raise FacebenchError(f"--preset {preset.name} aligns the photos of one verification set: give one --val "
                             f"NAME=PATH, not {len(preset.verify_sets)}")
    (name, pairs), = preset.verify_sets.items()
    data, images = out / "aligned" / Path(preset.data).name, out / "aligned" / name
    steps: list[Step] = [
        AlignStep(f"align {preset.data} ({preset.prealign})", data, preset.data, preset.prealign,
                  preset.prealign_workers),
        AlignStep(f"align {name} ({preset.prealign})", images, str(Path(pairs).parent), preset.prealign,
                  preset.prealign_workers),
    ]  # fmt: skip
    return Inputs(str(data), "none", str(images), steps)


def run_name(preset: Preset, name: str, seed: int) -> str:
    """A trained run's folder name: ``name``, with ``-seedN`` when the preset trains several seeds."""
    return name if len(preset.seeds) == 1 else f"{name}-seed{seed}"


def _train_settings(preset: Preset, inputs: Inputs, model: str, folder: Path, epochs: int,
                    seed: int) -> dict[str, Any]:  # fmt: skip
    settings: dict[str, Any] = {
        "model": model, "data": inputs.data, "out": str(folder), "epochs": epochs, "batch_size": preset.batch_size,
        "lr": preset.lr, "schedule": preset.schedule, "warmup_epochs": preset.warmup_epochs, "seed": seed,
        "checkpoint_every": preset.checkpoint_every, "device": preset.device, "align": inputs.align,
        "val": dict(preset.verify_sets) if preset.validate_in_loop else {},
    }  # fmt: skip
    if preset.validate_in_loop:
        settings |= {"val_folds": preset.verify_folds, "val_flip": preset.verify_flip,
                     "val_batch_size": preset.verify_batch_size}
    return settings | preset.extra_train


def plan_steps(preset: Preset, out: Path, report_dir: Path) -> list[Step]:
    """Every step of the study for ``preset``, runs under ``out``, the report in ``report_dir``."""
    inputs = plan_inputs(preset, out)

    photos = inputs.images_root or str(Path(next(iter(preset.verify_sets.values()))).parent)
    folders = {preset.all_pairs: photos} if preset.all_pairs else {}

    def verify(folder: Path, what: str, spec: str | None = None, weights: str | None = None) -> VerifyStep:
        return VerifyStep(f"verify {what}", folder, dict(preset.verify_sets), preset.verify_folds, preset.verify_flip,
                          preset.verify_batch_size, preset.device, inputs.align, spec, weights,
                          images_root=inputs.images_root, folders=folders, degrade=preset.degrade)  # fmt: skip

    def student_settings(student: str, folder: Path, seed: int) -> dict[str, Any]:
        return _train_settings(preset, inputs, student, folder, preset.student_epochs, seed)

    teacher = out / f"teacher-{preset.teacher}"
    steps: list[Step] = list(inputs.steps)
    if preset.teacher_weights is not None:  # pretrained: verified as it comes
        steps.append(verify(teacher, f"teacher {preset.teacher} (pretrained)", preset.teacher, preset.teacher_weights))
        from_teacher: dict[str, Any] = {"teacher": preset.teacher, "teacher_weights": preset.teacher_weights}
    else:
        steps += [TrainingStep(f"train teacher {preset.teacher}", "train", teacher,
                               _train_settings(preset, inputs, preset.teacher, teacher, preset.teacher_epochs,
                                               preset.seeds[0])),
                  verify(teacher, f"teacher {preset.teacher}")]  # fmt: skip
        from_teacher = {"teacher": str(teacher / CHECKPOINT)}
    for seed in preset.seeds:
        seeded = f", seed {seed}" if len(preset.seeds) > 1 else ""
        for method in preset.methods:
            for student in preset.students:
                folder = out / run_name(preset, f"{student}-{method}", seed)
                settings = student_settings(student, folder, seed) | from_teacher | {"method": method}
                steps += [TrainingStep(f"distill {student} ({method}{seeded})", "distill", folder, settings),
                          verify(folder, f"{student} ({method}{seeded})")]
        for name in preset.external_teachers:
            if seed == preset.seeds[0]:
                steps.append(verify(out / f"teacher-{name}", f"teacher {name}", spec=name))
            for student in preset.students:
                folder = out / run_name(preset, f"{student}-emb-{name}", seed)
                settings = student_settings(student, folder, seed) | {"teacher": name, "method": "emb"}
                steps += [TrainingStep(f"distill {student} (emb from {name}{seeded})", "distill", folder, settings),
                          verify(folder, f"{student} (emb from {name}{seeded})")]
    for student in preset.students:
        steps.append(verify(out / f"{student}-untrained", f"{student} untrained (reference)", spec=student))
    models = list(dict.fromkeys([preset.teacher, *preset.students, *preset.external_teachers]))
    steps.append(ProfileStep("profile " + ", ".join(models), out / "profile", models, preset.profile_device,
                             preset.profile_batch_size, preset.profile_threads, preset.profile_warmup,
                             preset.profile_iters))  # fmt: skip
    steps.append(ReportStep("report", report_dir, out))
    return steps


def plan_for(preset: Preset | DeployPreset | DetectorPreset, out: Path, report_dir: Path) -> list[Step]:
    """The steps of any preset: the study's (``plan_steps``), a deploy bench's (``plan_deploy_steps``) or a
    detector bench's (``plan_detector_steps``)."""
    from facebench.bench.deploy import plan_deploy_steps
    from facebench.bench.detector_table import plan_detector_steps

    if isinstance(preset, DeployPreset):
        return plan_deploy_steps(preset, out, report_dir)
    if isinstance(preset, DetectorPreset):
        return plan_detector_steps(preset, out, report_dir)
    return plan_steps(preset, out, report_dir)


def check_inputs(preset: Preset, states: list[str], steps: list[Step]) -> None:
    """Refuse, before the first step, what would fail hours in: missing data, pairs or models."""
    from facebench.eval.verify import load_pair_sets
    from facebench.external import load_external
    from facebench.models import model_spec

    for name in (preset.teacher, *preset.students):
        model_spec(name)
    pending = [s for s, state in zip(steps, states, strict=True) if state != DONE]
    if any(not isinstance(s, ReportStep) for s in pending):
        for name in preset.external_teachers:
            load_external(name)  # not installed -> the one line that says how
    if any(isinstance(s, TrainingStep | AlignStep) for s in pending) and not Path(preset.data).exists():
        raise FacebenchError(f"--data {preset.data}: no such file or folder")
    weights = preset.teacher_weights
    if weights is not None and any(not isinstance(s, ReportStep) for s in pending) and not Path(weights).is_file():
        raise FacebenchError(f"--preset {preset.name}: the teacher's weights {weights} are missing; put the "
                             f"pretrained {preset.teacher} weights there (see its README)")
    if any(isinstance(s, VerifyStep) for s in pending):
        load_pair_sets(preset.verify_sets, preset.verify_folds, "--folds")


def overview(steps: list[Step], states: list[str], walls: list[float | None], title: str) -> Table:
    """Where the bench stands: one line per step with its folder, state and wall time."""
    table = Table(title=title)
    for header in ("#", "step", "folder", "state", "wall s"):
        table.add_column(header, justify="right" if header in ("#", "wall s") else "left", overflow="fold")
    colour = {DONE: "green", RAN: "green", PARTIAL: "yellow", FAILED: "red", INTERRUPTED: "red"}
    for k, (step, state, wall) in enumerate(zip(steps, states, walls, strict=True), start=1):
        table.add_row(str(k), step.title, str(step.folder), f"[{colour.get(state, 'white')}]{state}[/]",
                      "" if wall is None else f"{wall:.0f}")
    return table


@dataclass
class BenchLog:
    """bench.json: the plan, the command, the machine and each step's status and wall time."""

    path: Path
    preset: Preset
    previous: dict[str, float]  # wall seconds of steps finished in earlier sessions, by title

    @classmethod
    def open(cls, out: Path, preset: Preset) -> BenchLog:
        path = out / BENCH_LOG
        previous: dict[str, float] = {}
        fix = "move it away (the bench writes a new one)"
        for k, step in enumerate(read_json(path, {"steps": list}, fix)["steps"] if path.is_file() else []):
            if not isinstance(step, dict) or not isinstance(step.get("step"), str):
                raise FacebenchError(f"{path}: steps[{k}] is not a step object; {fix}")
            wall = step.get("wall_s")
            if step.get("status") in (RAN, DONE) and isinstance(wall, (int, float)):  # finished steps only
                previous[step["step"]] = float(wall)
        return cls(path, preset, previous)

    def write(self, steps: list[Step], states: list[str], walls: list[float | None]) -> None:
        from facebench.provenance import environment

        rows = [{"step": s.title, "run": str(s.folder), "status": state, "wall_s": wall, "command": s.command()}
                for s, state, wall in zip(steps, states, walls, strict=True)]  # fmt: skip
        env = environment()
        write_json_atomic(self.path, {
            "preset": self.preset.name, "command": env["command"], "environment": env,
            "plan": self.preset.as_dict(), "steps": rows,
            "total_wall_s": sum(w for w in walls if w is not None),
        })  # fmt: skip


def run_bench(steps: list[Step], preset: Preset | DeployPreset | DetectorPreset, out: Path, console: Console, *,
              dry_run: bool = False, check: Callable[[list[str]], None] | None = None) -> list[str]:  # fmt: skip
    """Run every step not yet complete, in order; returns the final state of each step. ``check(states)`` refuses
    bad inputs before the first step (default: the study preset's ``check_inputs``)."""
    states = [step.state() for step in steps]
    log = BenchLog.open(out, preset)
    walls: list[float | None] = [log.previous.get(s.title) if state == DONE else None
                                 for s, state in zip(steps, states, strict=True)]  # fmt: skip
    console.print(overview(steps, states, walls, f"facebench bench --preset {preset.name}: {preset.description}"))
    if dry_run:
        for k, step in enumerate(steps, start=1):
            console.print(f"{k}. {step.command()}", highlight=False, soft_wrap=True, markup=False)
        return states
    if check is not None:
        check(states)
    elif isinstance(preset, Preset):
        check_inputs(preset, states, steps)
    with FolderLock(out, "--out"):  # one bench per runs folder
        ran_before = False
        for k, step in enumerate(steps):
            if states[k] == DONE and ran_before and isinstance(step, VerifyStep):
                states[k] = step.state()  # an earlier step may have replaced what it scored (a DetectStep its crops)
            if states[k] == DONE:
                continue
            ran_before = True
            console.rule(f"[{k + 1}/{len(steps)}] {step.title} -> {step.folder}")
            resume = states[k] == PARTIAL
            states[k] = RUNNING
            log.write(steps, states, walls)
            started = time.perf_counter()
            try:
                step.run(console, resume=resume)
            except BaseException as exc:
                states[k] = INTERRUPTED if isinstance(exc, KeyboardInterrupt) else FAILED
                walls[k] = time.perf_counter() - started
                log.write(steps, states, walls)
                raise
            states[k], walls[k] = RAN, time.perf_counter() - started
            log.write(steps, states, walls)
    console.print(overview(steps, states, walls, f"facebench bench --preset {preset.name}: finished"))
    return states
