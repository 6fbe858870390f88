"""Verification pairs: LFW ``pairs.txt``, generic pairs CSV and insightface ``.bin`` -> PairSet.

LFW format: a header ``folds n`` (or a single ``n`` for one fold, as View 1), then per
fold ``n`` matched lines ``name i j`` followed by ``n`` mismatched lines
``name1 i name2 j`` (fields separated by tabs or spaces). Image ``i`` of ``name`` is
``root/name/name_%04d.jpg`` when the identity folder uses LFW's file names, and
otherwise the i-th image (1-based) of ``root/name/`` in sorted file-name order, so
``facebench pairs`` can describe any identity-folder dataset in the same format.

CSV format: ``path_a,path_b,issame[,fold]`` per line (an optional header line whose
third field is ``issame``); relative paths are taken from ``images_root`` or the
CSV's folder; issame is 1/0, true/false or yes/no.
"""

from __future__ import annotations

import csv
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.choices import PAIR_FORMATS
from facebench.data.folders import list_images
from facebench.errors import FacebenchError
from facebench.fileio import atomic_path, read_text_input

LFW_FORMS = "expected 'name i j' (matched) or 'name1 i name2 j' (mismatched), numbers from 1"
CSV_FORM = "expected 'path_a,path_b,issame[,fold]' with issame 1/0/true/false/yes/no"
_TRUE = {"1", "true", "yes", "y", "t"}
_FALSE = {"0", "false", "no", "n", "f"}


@dataclass
class PairSet:
    """Pairs of face images to verify (the interface agreed with facebench verify)."""

    name: str                   # short set name, e.g. "lfw" (from the file stem)
    source: str                 # path of the pairs file (.txt / .bin / .csv)
    images: list[str | bytes]   # the unique images the pairs use: paths or encoded bytes
    left: np.ndarray            # int64 (P,), index into images
    right: np.ndarray           # int64 (P,)
    issame: np.ndarray          # bool (P,)
    folds: np.ndarray | None    # int64 (P,) fold 0..k-1 from the file; None when it has none
    lines: np.ndarray | None    # int64 (P,) 1-based line of each pair in the file; None for .bin

    def __len__(self) -> int:
        return len(self.issame)


def lfw_numbering(identity: str, files: Sequence[str]) -> dict[int, str]:
    """The image numbers pairs.txt uses for one identity folder -> file name.

    LFW's ``<identity>_NNNN.<ext>`` when every file is named so, else 1-based position
    in sorted name order (the rule ``facebench pairs`` writes with).
    """
    pattern = re.compile(re.escape(identity) + r"_(\d{4})\.[A-Za-z]+")
    matches = [pattern.fullmatch(name) for name in files]
    if files and all(matches):
        return {int(m.group(1)): m.group(0) for m in matches}
    return {position: name for position, name in enumerate(sorted(files), 1)}


class _FolderNumbers:
    """Caches lfw_numbering per identity folder under one root."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._cache: dict[str, dict[int, str]] = {}

    def path(self, identity: str, number: int) -> Path | None:
        if identity not in self._cache:
            folder = self.root / identity
            names = [p.name for p in list_images(folder)] if folder.is_dir() else []
            self._cache[identity] = lfw_numbering(identity, names)
        name = self._cache[identity].get(number)
        return None if name is None else self.root / identity / name


class _PairBuilder:
    """Collects pairs, listing each image once."""

    def __init__(self) -> None:
        self.images: list[str | bytes] = []
        self._position: dict[str, int] = {}
        self.left: list[int] = []
        self.right: list[int] = []
        self.issame: list[bool] = []
        self.folds: list[int] = []
        self.lines: list[int] = []

    def image(self, path: Path) -> int:
        key = str(path)
        if key not in self._position:
            self._position[key] = len(self.images)
            self.images.append(key)
        return self._position[key]

    def add(self, a: Path, b: Path, same: bool, fold: int, line: int) -> None:
        self.left.append(self.image(a))
        self.right.append(self.image(b))
        self.issame.append(same)
        self.folds.append(fold)
        self.lines.append(line)

    def build(self, path: Path, with_folds: bool) -> PairSet:
        if not self.issame:
            raise FacebenchError(f"{path}: holds no pairs")
        as_int = lambda values: np.asarray(values, dtype=np.int64)  # noqa: E731
        return PairSet(path.stem, str(path), self.images, as_int(self.left), as_int(self.right),
                       np.asarray(self.issame, dtype=bool), as_int(self.folds) if with_folds else None,
                       as_int(self.lines))


def _read_lines(path: Path) -> list[str]:
    try:
        return read_text_input(path).splitlines()  # a BOM and CRLF accepted
    except FileNotFoundError:
        raise FacebenchError(f"{path}: pairs file not found") from None
    except UnicodeDecodeError:
        raise FacebenchError(f"{path}: not a text file; pairs files are text (LFW pairs.txt or CSV)") from None


def _lfw_header(path: Path, lines: list[str]) -> tuple[int, int, int]:
    """(folds, pairs of each kind per fold, line number of the header)."""
    for number, line in enumerate(lines, 1):
        if not line.strip():
            continue
        fields = line.split()
        try:
            values = [int(f) for f in fields]
        except ValueError:
            values = []
        if len(values) == 2 and min(values) > 0:
            return values[0], values[1], number
        if len(values) == 1 and values[0] > 0:
            return 1, values[0], number
        raise FacebenchError(
            f"{path}:{number}: header {line.strip()!r} is not 'folds n' (e.g. '10 300'), nor 'n' for one fold"
        )
    raise FacebenchError(f"{path}: empty pairs file; expected a 'folds n' header then pairs lines")


def _lfw_fields(path: Path, number: int, line: str) -> tuple[str, int, str, int]:
    fields = line.split()
    try:
        if len(fields) == 3:
            name, i, j = fields[0], int(fields[1]), int(fields[2])
            result = (name, i, name, j)
        elif len(fields) == 4:
            result = (fields[0], int(fields[1]), fields[2], int(fields[3]))
        else:
            raise ValueError
    except ValueError:
        raise FacebenchError(f"{path}:{number}: {line.strip()!r} is not a pairs line; {LFW_FORMS}") from None
    if result[1] < 1 or result[3] < 1:
        raise FacebenchError(f"{path}:{number}: {line.strip()!r} is not a pairs line; {LFW_FORMS}")
    return result


def read_lfw_pairs(path: str | Path, images_root: str | Path | None = None) -> PairSet:
    """LFW pairs.txt -> PairSet with folds (pair k is in fold k // (2n))."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    lines = _read_lines(path)
    folds, per_fold, header_line = _lfw_header(path, lines)
    numbers = _FolderNumbers(root)
    builder = _PairBuilder()
    for number, line in enumerate(lines[header_line:], header_line + 1):
        if not line.strip():
            continue
        name_a, i, name_b, j = _lfw_fields(path, number, line)
        resolved = []
        for name, k in ((name_a, i), (name_b, j)):
            image = numbers.path(name, k)
            if image is None or not image.is_file():
                shown = image or root / name / f"{name}_{k:04d}.jpg"
                raise FacebenchError(
                    f"{path}:{number}: image {shown} not found; fix the images root (now {root}) or the line"
                )
            resolved.append(image)
        builder.add(resolved[0], resolved[1], name_a == name_b, len(builder.issame) // (2 * per_fold), number)
    expected = folds * 2 * per_fold
    if len(builder.issame) != expected:
        raise FacebenchError(
            f"{path}: header says {folds} folds x {2 * per_fold} pairs = {expected} pairs, "
            f"but the file has {len(builder.issame)}; fix the header or the pairs"
        )
    return builder.build(path, with_folds=True)


def _parse_bool(text: str) -> bool | None:
    value = text.strip().lower()
    return True if value in _TRUE else False if value in _FALSE else None


def read_csv_pairs(path: str | Path, images_root: str | Path | None = None) -> PairSet:
    """Pairs CSV ``path_a,path_b,issame[,fold]`` -> PairSet (folds renumbered 0..k-1 when present)."""
    path = Path(path)
    root = Path(images_root) if images_root is not None else path.parent
    builder = _PairBuilder()
    with_folds: bool | None = None
    for number, row in enumerate(csv.reader(_read_lines(path)), 1):
        if not row or not "".join(row).strip():
            continue
        if number == 1 and len(row) >= 3 and row[2].strip().lower() == "issame":
            continue
        same = _parse_bool(row[2]) if len(row) in (3, 4) else None
        fold = row[3].strip() if len(row) == 4 else None
        if same is None or (fold is not None and not fold.lstrip("-").isdigit()):
            raise FacebenchError(f"{path}:{number}: {','.join(row)!r} is not a pairs row; {CSV_FORM}")
        if with_folds is None:
            with_folds = fold is not None
        elif with_folds != (fold is not None):
            raise FacebenchError(f"{path}:{number}: some rows have a fold column and some do not; give all or none")
        images = []
        for text in row[:2]:
            image = root / text.strip()
            if not image.is_file():
                raise FacebenchError(f"{path}:{number}: image {image} not found; fix the images root (now {root}) "
                                     "or the path")
            images.append(image)
        builder.add(images[0], images[1], same, int(fold) if fold is not None else 0, number)
    pairs = builder.build(path, with_folds=bool(with_folds))
    if pairs.folds is not None:
        pairs.folds = np.unique(pairs.folds, return_inverse=True)[1].astype(np.int64)
    return pairs


def read_bin_pairs(path: str | Path) -> PairSet:
    """insightface .bin -> PairSet; pair i is images 2i and 2i+1, no folds, no lines."""
    from facebench.data.binset import read_bin

    path = Path(path)
    images, issame = read_bin(path)
    count = len(issame)
    return PairSet(path.stem, str(path), list(images), np.arange(0, 2 * count, 2, dtype=np.int64),
                   np.arange(1, 2 * count, 2, dtype=np.int64), issame, None, None)


def read_pairs(path: str | Path, fmt: str = "auto", images_root: str | Path | None = None) -> PairSet:
    """Read any pairs source; fmt 'auto' picks by suffix: .bin -> bin, .csv -> csv, else lfw."""
    path = Path(path)
    if fmt == "auto":
        fmt = {".bin": "bin", ".csv": "csv"}.get(path.suffix.lower(), "lfw")
    if fmt == "lfw":
        return read_lfw_pairs(path, images_root)
    if fmt == "csv":
        return read_csv_pairs(path, images_root)
    if fmt == "bin":
        return read_bin_pairs(path)
    raise FacebenchError(f"pairs format {fmt!r} is not one of: {', '.join(PAIR_FORMATS)}")


Matched = tuple[str, int, int]           # name, i, j
Mismatched = tuple[str, int, str, int]   # name1, i, name2, j


def format_lfw_pairs(folds: Sequence[tuple[Sequence[Matched], Sequence[Mismatched]]]) -> str:
    """LFW pairs.txt text: header ``folds n``, then per fold n matched then n mismatched lines."""
    per_fold = len(folds[0][0])
    if any(len(m) != per_fold or len(mm) != per_fold for m, mm in folds):
        raise ValueError("every fold needs the same number of matched and mismatched pairs")
    lines = [f"{len(folds)}\t{per_fold}"]
    for matched, mismatched in folds:
        lines.extend(f"{name}\t{i}\t{j}" for name, i, j in matched)
        lines.extend(f"{a}\t{i}\t{b}\t{j}" for a, i, b, j in mismatched)
    return "\n".join(lines) + "\n"


def write_lfw_pairs(path: str | Path, folds: Sequence[tuple[Sequence[Matched], Sequence[Mismatched]]]) -> None:
    """Write LFW pairs.txt atomically (temporary file in the same folder, then rename)."""
    text = format_lfw_pairs(folds)
    with atomic_path(path) as temp:
        temp.write_text(text)
