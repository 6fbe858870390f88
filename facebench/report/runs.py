"""Run folders as the report reads them: discovery, the fields it reads, and teacher links.

A **run folder** (``facebench.runfolder``) holds ``config.json`` and ``verify.json``
(``scores.csv`` and ``profile.json`` optional); a **profile folder** holds
``profile.json`` and no ``config.json``. Nothing else is read, so every number in a
report traces to one of these files. The fields read, which train / distill / verify /
profile write:

``config.json`` (written by ``facebench.train.engine``; ``config`` is ``asdict`` of the run's config):
  - ``config.model``: zoo name of the trained network (for ``facebench distill``: the student).
  - ``config.method``: ``"none" | "kd" | "adv" | "emb"`` for a distill run; absent for a
    ``facebench train`` run, which counts as vanilla (``"none"``).
  - ``teacher`` (top level, distill runs only): ``{"model": zoo name or external name,
    "checkpoint": path of the teacher checkpoint used (as given, or absolute), "sha256":
    hex SHA-256 of that file's bytes}``. The teacher's own run folder is the one holding
    that checkpoint, or failing that, the one whose ``best.pt`` / ``checkpoint.pt`` has that
    hash (so moved folders still link), or failing that, the one folder of that model and
    that folder name (a copy of the small files without checkpoints, as in reports/runs).
  - ``environment`` (``facebench.provenance.environment``): ``command``, ``time_utc``, ``cpu``,
    ``gpus``, ``torch_version``; ``total_steps``; ``resumed_at_step``.
``verify.json`` (``facebench.eval.verify.write_outputs``): ``rows[*]``: ``set``, ``n_pairs``,
  ``accuracy``, ``accuracy_std``, ``tar_at_far_1e-03``, ``wall_s``; ``meta.model_source``.
  A folder holding only the verify.json of a **pretrained** model (``meta.external`` or
  ``meta.pretrained`` true, ``meta.model_name``: ``facebench verify --model dlib --out DIR``,
  ``--model mfn128 --weights FILE``, ``--model FILE.onnx``) is a run too: nobody trained it
  here, so it has no config.json; it is a distill run's teacher when the run's
  ``teacher.model`` names it. So is the verify.json of an **untrained** zoo model
  (``meta.untrained`` true: ``facebench verify --model mobilenet``, seeded random weights):
  Table 1's reference row for that architecture, never a teacher or a Vanilla cell.
``scores.csv`` (same writer): ``set``, ``pair``, ``score`` (cosine), ``issame``, ``fold``; with
  verify.json's ``meta.results[set].fold_threshold_sq_l2``, the per-pair decisions of Table 1's
  paired tests (``facebench.report.significance``).
``profile.json`` (``facebench profile``): ``rows[*]``: ``model``, ``device``, ``dtype``,
  ``batch``, ``threads``, ``params_m``, ``size_mb``, ``gmacs``, ``gflops``,
  ``latency_ms_{mean,std,p50,p95}``, ``mem_*_mb``; ``meta.environment``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

from facebench.distill.config import METHODS as DISTILL_METHODS
from facebench.errors import FacebenchError
from facebench.fileio import read_json
from facebench.report.operating import ALL_PAIRS, all_pairs_rows
from facebench.runfolder import CONFIG, PROFILE, VERIFY, RunFolder

# method id in config.json -> (column id, the study's name), as each method's registration gives them
METHODS: dict[str, tuple[str, str]] = {name: (m.column, m.title) for name, m in DISTILL_METHODS.items()}
TAR_KEY = "tar_at_far_1e-03"  # the verify.json column Table 1 reports
VERIFY_ROW_KEYS = ("set", "n_pairs", "accuracy", "accuracy_std")
PROFILE_ROW_KEYS = ("model", "device", "dtype", "batch", "params_m", "size_mb", "gmacs", "gflops",
                    "latency_ms_mean", "latency_ms_std")


def _require(mapping: Any, keys: tuple[str, ...], where: str) -> None:
    if not isinstance(mapping, dict):
        raise FacebenchError(f"{where}: expected an object")
    missing = [k for k in keys if k not in mapping]
    if missing:
        raise FacebenchError(f"{where}: missing {', '.join(missing)}; it was not written by this facebench")


def _check_verify(verify: dict[str, Any], folder: Path) -> None:
    """A verify.json must hold rows with the fields the report reads, and meta."""
    _require(verify, ("rows", "meta"), str(folder / VERIFY))
    for k, row in enumerate(verify["rows"]):
        _require(row, VERIFY_ROW_KEYS, f"{folder / VERIFY} rows[{k}]")


@dataclass
class Run:
    """One run folder: its config.json and verify.json, validated."""

    path: Path
    name: str  # the folder relative to the runs root (how tables name it)
    config: dict[str, Any]
    verify: dict[str, Any]

    @classmethod
    def load(cls, path: Path, name: str) -> Run:
        folder = RunFolder(path)
        config, verify = folder.read_config(), folder.read_verify()
        _require(config, ("config",), str(folder / CONFIG))
        _require(config["config"], ("model",), f"{folder / CONFIG} config")
        method = config["config"].get("method", "none")
        if method not in METHODS:
            raise FacebenchError(f"{folder / CONFIG}: method {method!r} is not one of: {', '.join(METHODS)}")
        if method != "none" and "teacher" in config:
            _require(config["teacher"], ("model", "checkpoint"), f"{folder / CONFIG} teacher")
        _check_verify(verify, path)
        return cls(path, name, config, verify)

    @classmethod
    def load_external(cls, path: Path, name: str, verify: dict[str, Any]) -> Run:
        """The verification of an external pretrained model (no config.json: see the module docstring)."""
        _check_verify(verify, path)
        _require(verify["meta"], ("model_name", "model_source"), f"{path / VERIFY} meta")
        config = {"config": {"model": verify["meta"]["model_name"]}, "external": verify["meta"]["model_source"]}
        if verify["meta"].get("untrained") is True:
            config["untrained"] = True
        return cls(path, name, config, verify)

    @property
    def model(self) -> str:
        return self.config["config"]["model"]

    @property
    def is_external(self) -> bool:
        return "external" in self.config

    @property
    def is_untrained(self) -> bool:
        """The verification of an untrained zoo model (random weights): a reference, not a result."""
        return self.config.get("untrained") is True

    @property
    def seed(self) -> int | None:
        """config.json's ``config.seed`` (None for a verify-only folder)."""
        return self.config["config"].get("seed")

    @property
    def method(self) -> str:
        """``none`` (vanilla), ``kd``, ``adv`` or ``emb``."""
        return self.config["config"].get("method", "none")

    @property
    def is_distill(self) -> bool:
        return "method" in self.config["config"]

    @property
    def teacher_ref(self) -> dict[str, Any] | None:
        return self.config.get("teacher")

    @property
    def environment(self) -> dict[str, Any]:
        return self.config.get("environment", {})

    @property
    def sets(self) -> dict[str, dict[str, Any]]:
        """verify.json rows of the pairs protocol (k-fold accuracy) by set name."""
        return {row["set"]: row for row in self.verify["rows"] if row.get("protocol") != ALL_PAIRS}

    @property
    def all_pairs(self) -> list[dict[str, Any]]:
        """verify.json rows of the all-pairs protocol (``verify --folders``), in file order."""
        return all_pairs_rows(self.verify)

    @cached_property
    def checkpoint_hashes(self) -> set[str]:
        """SHA-256 of each checkpoint file in the folder (computed once, on demand)."""
        return RunFolder(self.path).checkpoint_hashes()


@dataclass
class ProfileFile:
    """A profile.json (from ``facebench profile`` or bench's profile step)."""

    path: Path
    data: dict[str, Any]

    @classmethod
    def load(cls, path: Path) -> ProfileFile:
        data = read_json(path)
        _require(data, ("rows", "meta"), str(path))
        for k, row in enumerate(data["rows"]):
            _require(row, PROFILE_ROW_KEYS, f"{path} rows[{k}]")
        return cls(path, data)

    @property
    def rows(self) -> list[dict[str, Any]]:
        return self.data["rows"]


@dataclass
class Discovery:
    """Everything found under a runs folder."""

    runs: list[Run] = field(default_factory=list)
    profiles: list[ProfileFile] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # "<folder>: <why>" for incomplete run folders


def discover(runs_root: Path, extra_profiles: list[Path] | None = None) -> Discovery:
    """Run folders and profile files under ``runs_root`` (recursively), plus ``extra_profiles``.

    ``extra_profiles`` are profile.json files or folders holding one. A folder with
    config.json but no verify.json is an unfinished run: listed in ``skipped``.
    """
    if not runs_root.is_dir():
        raise FacebenchError(f"--runs {runs_root}: no such folder")
    found = Discovery()

    def name_of(folder: Path) -> str:
        name = folder.relative_to(runs_root).as_posix()
        return folder.resolve().name if name == "." else name

    for config in sorted(runs_root.rglob(CONFIG)):
        folder = config.parent
        if (folder / VERIFY).is_file():
            found.runs.append(Run.load(folder, name_of(folder)))
        else:
            found.skipped.append(f"{folder}: config.json without verify.json (unfinished run)")
    for verify in sorted(runs_root.rglob(VERIFY)):
        folder = verify.parent
        if not (folder / CONFIG).is_file():
            data = read_json(verify)
            meta = data.get("meta", {})
            if any(meta.get(key) is True for key in ("external", "pretrained", "untrained")):
                found.runs.append(Run.load_external(folder, name_of(folder), data))
    profile_files = sorted(runs_root.rglob(PROFILE))
    for extra in extra_profiles or []:
        path = extra / PROFILE if extra.is_dir() else extra
        if not path.is_file():
            raise FacebenchError(f"--profile {extra}: no profile.json there; write one with facebench profile --out DIR")
        if path.resolve() not in {p.resolve() for p in profile_files}:
            profile_files.append(path)
    found.profiles = [ProfileFile.load(p) for p in profile_files]
    return found


def find_teacher(run: Run, runs: list[Run]) -> Run | None:
    """The run folder of a distill run's teacher: the trained run its checkpoint came from, or the external
    model's verification; None when the runs hold neither."""
    ref = run.teacher_ref
    if ref is None:
        return None
    external = [r for r in runs if r.is_external and not r.is_untrained and r.model == ref.get("model")]
    if len(external) == 1:
        return external[0]
    candidates = [r for r in runs if not r.is_distill and not r.is_external]
    checkpoint = Path(ref["checkpoint"])
    for candidate in candidates:
        if checkpoint.resolve().parent == candidate.path.resolve():
            return candidate
    digest = ref.get("sha256")
    if digest:
        for candidate in candidates:
            if digest in candidate.checkpoint_hashes:
                return candidate
    same_name = [c for c in candidates if c.path.name == checkpoint.parent.name and c.model == ref.get("model")]
    return same_name[0] if len(same_name) == 1 else None  # a copy without checkpoints (reports/runs)
