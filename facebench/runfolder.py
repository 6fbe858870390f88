"""Run folders: the one owner of their file names, their small files, file hashes, the link to a teacher,
and how complete a run is.

train, distill, verify and profile write through this module; bench and report read
through it. A run folder (``facebench train|distill|verify|profile --out DIR``) holds:

- ``config.json``: the run's settings (``config``), facts about it (steps, classes, ...),
  its ``environment`` and, for a distilled run, its ``teacher`` (model, checkpoint, sha256);
- ``checkpoint.pt``: the last state, resumable (weights, margin head, optimisers, RNG);
- ``best.pt``: the weights that scored best in validation (backbone only);
- ``metrics.csv``, ``val.csv``: the training and validation logs;
- ``verify.{json,md,csv}``, ``scores.csv``: a verification (``facebench verify``);
- ``profile.{json,md,csv}``: a profile (``facebench profile``); ``video_profile.{json,md,csv}``:
  a video profile (``facebench profile --video``);
- a bench's runs folder also holds ``bench.json``, the bench's log.

Its state: **absent** (no ``config.json`` or no ``checkpoint.pt``), **partial** (the last
checkpoint is short of the run's ``total_steps``: resumable) or **complete**.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

from facebench.checkpoint import load_checkpoint
from facebench.errors import FacebenchError
from facebench.fileio import read_json, write_json_atomic
from facebench.tables import write_tables

CONFIG = "config.json"
CHECKPOINT = "checkpoint.pt"
BEST = "best.pt"
METRICS = "metrics.csv"
VAL_LOG = "val.csv"
VERIFY_STEM = "verify"
VERIFY = f"{VERIFY_STEM}.json"
SCORES = "scores.csv"
PROFILE_STEM = "profile"
PROFILE = f"{PROFILE_STEM}.json"
VIDEO_PROFILE_STEM = "video_profile"
BENCH_LOG = "bench.json"
VARIANT = "variant.json"  # a deploy bench's variant folder: what the variant is (facebench.report.deploy)
CHECKPOINTS = (BEST, CHECKPOINT)
ABSENT, PARTIAL, COMPLETE = "absent", "partial", "complete"


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file's bytes, read in 1 MiB chunks."""
    digest = hashlib.sha256()
    with Path(path).open("rb") as handle:
        for chunk in iter(lambda: handle.read(2**20), b""):
            digest.update(chunk)
    return digest.hexdigest()


class RunFolder:
    """One run folder: where its files are, reading and writing them."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def __truediv__(self, name: str) -> Path:
        return self.path / name

    def has(self, name: str) -> bool:
        """Whether the folder holds the file ``name``."""
        return (self.path / name).is_file()

    def checkpoints(self, order: tuple[str, ...] = CHECKPOINTS) -> list[Path]:
        """The checkpoint files present, in ``order`` (best.pt first by default)."""
        return [self.path / name for name in order if self.has(name)]

    def checkpoint_hashes(self) -> set[str]:
        """SHA-256 of each checkpoint file present."""
        return {file_sha256(path) for path in self.checkpoints()}

    def read_config(self) -> dict[str, Any]:
        """config.json; a missing or broken file, or one without its ``config`` -> FacebenchError naming it."""
        return read_json(self.path / CONFIG, {"config": dict})

    def write_config(self, data: dict[str, Any]) -> Path:
        """config.json, atomically and fsynced (it describes the fsynced checkpoint.pt)."""
        write_json_atomic(self.path / CONFIG, data, durable=True)
        return self.path / CONFIG

    def read_verify(self) -> dict[str, Any]:
        """verify.json; a missing or broken file -> FacebenchError naming it."""
        return read_json(self.path / VERIFY, {"rows": list, "meta": dict})

    def write_verify(self, rows: list[dict[str, Any]], *, title: str, meta: dict[str, Any]) -> list[Path]:
        """verify.{csv,md,json}, each atomically."""
        return write_tables(rows, self.path, VERIFY_STEM, title=title, meta=meta)

    def read_profile(self) -> dict[str, Any]:
        """profile.json; a missing or broken file -> FacebenchError naming it."""
        return read_json(self.path / PROFILE, {"rows": list, "meta": dict})

    def write_profile(self, rows: list[dict[str, Any]], *, title: str, meta: dict[str, Any]) -> list[Path]:
        """profile.{csv,md,json}, each atomically."""
        return write_tables(rows, self.path, PROFILE_STEM, title=title, meta=meta)

    def write_video_profile(self, rows: list[dict[str, Any]], *, title: str, meta: dict[str, Any]) -> list[Path]:
        """video_profile.{csv,md,json}, each atomically."""
        return write_tables(rows, self.path, VIDEO_PROFILE_STEM, title=title, meta=meta)

    def teacher(self) -> dict[str, Any] | None:
        """The teacher a distilled run learnt from (config.json's ``teacher``), or None."""
        return self.read_config().get("teacher")

    def check_teacher(self, sha256: str, label: str, fix: str) -> None:
        """Refuse a teacher file other than the one this run recorded (by SHA-256), ending with ``fix``."""
        recorded = self.teacher() if self.has(CONFIG) else None
        if recorded is None or recorded.get("sha256") in (None, sha256):
            return
        raise FacebenchError(
            f"{self.path}: it was distilled from teacher {recorded.get('checkpoint')} (sha256 "
            f"{str(recorded.get('sha256'))[:12]}...), but {label} has sha256 {sha256[:12]}...; {fix}"
        )

    def training_state(self) -> str:
        """ABSENT, PARTIAL (resumable) or COMPLETE, from config.json's total_steps and checkpoint.pt's step."""
        if not self.has(CONFIG) or not self.has(CHECKPOINT):
            return ABSENT
        total = self.read_config().get("total_steps")
        step = load_checkpoint(self.path / CHECKPOINT).get("extra", {}).get("training", {}).get("step")
        return COMPLETE if step is not None and total is not None and step >= total else PARTIAL
