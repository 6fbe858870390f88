"""Training logs: ``metrics.csv`` / ``val.csv`` rows (appended, cut back on resume) and TensorBoard.

A run killed after its last checkpoint may have logged steps that the resumed run will
compute again; ``CsvLog(path, resume_step)`` drops those rows first, so every step
appears once. TensorBoard scalars are written when the ``tensorboard`` package is
installed (``pip install tensorboard``), silently skipped otherwise.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from facebench.fileio import no_space_as_error, write_text_atomic


class CsvLog:
    """A CSV file of rows keyed by ``step``; columns fixed by the first row written."""

    def __init__(self, path: str | Path, resume_step: int | None = None) -> None:
        self.path = Path(path)
        self.columns: list[str] | None = None
        if resume_step is None:
            self.path.unlink(missing_ok=True)
        elif self.path.is_file():
            self._cut_after(resume_step)

    def _cut_after(self, step: int) -> None:
        """Keep the header and the complete rows with step <= ``step`` (atomic rewrite)."""
        with self.path.open(newline="", encoding="utf-8") as handle:
            rows = list(csv.reader(handle))
        if not rows:
            return
        self.columns = rows[0]
        kept = [row for row in rows[1:] if len(row) == len(self.columns) and _step_at_most(row[0], step)]
        buffer = io.StringIO()
        csv.writer(buffer, lineterminator="\n").writerows([self.columns, *kept])
        write_text_atomic(self.path, buffer.getvalue())

    def write(self, row: Mapping[str, Any]) -> None:
        """Append one row (its keys must match the columns of the first row)."""
        if self.columns is None:
            self.columns = list(row)
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with self.path.open("w", newline="", encoding="utf-8") as handle:
                csv.writer(handle, lineterminator="\n").writerow(self.columns)
        elif list(row) != self.columns:
            raise ValueError(f"{self.path}: row keys {list(row)} differ from the columns {self.columns}")
        with no_space_as_error(self.path), self.path.open("a", newline="", encoding="utf-8") as handle:
            csv.writer(handle, lineterminator="\n").writerow([_cell(row[c]) for c in self.columns])


def _step_at_most(text: str, step: int) -> bool:
    try:
        return int(text) <= step
    except ValueError:
        return False


def _cell(value: Any) -> Any:
    return f"{value:.6g}" if isinstance(value, float) else value


class TensorBoard:
    """Scalars to ``run_dir/tensorboard`` when tensorboard is installed; otherwise does nothing."""

    def __init__(self, run_dir: Path, enabled: bool = True) -> None:
        self.writer = None
        if not enabled:
            return
        try:
            from torch.utils.tensorboard import SummaryWriter
        except ImportError:  # tensorboard is optional
            return
        self.writer = SummaryWriter(str(run_dir / "tensorboard"))

    @property
    def active(self) -> bool:
        return self.writer is not None

    def scalars(self, step: int, values: Mapping[str, float], prefix: str) -> None:
        if self.writer is not None:
            for name, value in values.items():
                self.writer.add_scalar(f"{prefix}/{name}", value, step)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
