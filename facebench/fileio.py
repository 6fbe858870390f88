"""facebench's own files: written atomically (a temporary file beside the target, then a
rename), read back with one clear line on damage; output paths checked before any work.

A crash or a user error never leaves a half-written result behind; readers see the old
file or the new one, nothing in between. A ``durable`` write (checkpoints, config.json)
also survives a power cut: the file is fsynced before the rename and its folder after.
Other writes skip that (about 9 ms per file on an ext4 disk): they are cheap to redo.
"""

from __future__ import annotations

import errno
import json
import os
import re
import shutil
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError

# what atomic_path names its temporary files: .<stem>.<8 of mkstemp's characters><suffix>
TEMP_NAME = re.compile(r"\.[^/]+\.[a-z0-9_]{8}(\.[^./]+)?")
PROBE_PREFIX = ".facebench-probe."  # check_output_dir's probe, a TEMP_NAME too


@contextmanager
def atomic_path(path: str | Path, *, durable: bool = False, size_hint: int | None = None) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's suffix, so writers that infer a format from it
    (matplotlib, cv2.imwrite) behave the same. ``durable``: fsync the file before the
    rename and the folder after it. A full disk is one line (``no_space_as_error``; ``size_hint``:
    the bytes the file will take, when known).
    """
    target = Path(path)
    with no_space_as_error(target, size_hint):
        target.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            with no_space_as_error(target, size_hint, partial=tmp):
                yield tmp
                _finish(tmp, target, durable)
        finally:
            tmp.unlink(missing_ok=True)


def _finish(tmp: Path, target: Path, durable: bool) -> None:
    """The written temporary file becomes ``target`` (fsynced first and after when ``durable``)."""
    tmp.chmod(_default_file_mode())  # mkstemp makes 0600; results should read like any new file
    if durable:
        _fsync(tmp, os.O_RDONLY)
    os.replace(tmp, target)
    if durable:
        _fsync(target.parent, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))


# what torch.save's C++ writer says when a write fails (it raises RuntimeError, not OSError)
_TORCH_WRITE_FAILED = ("unexpected pos", "file write failed", "failed writing")
_LOW_SPACE_BYTES = 16 * 2**20  # a failed write with less than this free: the disk was full


@contextmanager
def no_space_as_error(target: str | Path, size_hint: int | None = None, *, partial: Path | None = None
                      ) -> Iterator[None]:  # fmt: skip
    """A full disk (ENOSPC, EDQUOT, or torch.save's failed write with the disk all but full) while writing
    ``target`` -> FacebenchError: "no space left on device while writing FILE; N MB needed" (exit 2).

    N is ``size_hint`` when the size is known, else at least what ``partial`` (the file being written) had
    reached. Every writer of facebench's goes through it: ``atomic_path`` for whole files, appends directly.
    """
    try:
        yield
    except (OSError, RuntimeError) as exc:
        folder = Path(target).parent
        if not _is_no_space(exc, folder):
            raise
        written = partial.stat().st_size if partial is not None and partial.exists() else 0
        needed = f"{_mb(size_hint)} MB needed" if size_hint else f"at least {_mb(max(written, 1))} MB needed"
        raise FacebenchError(f"no space left on device while writing {target}; {needed} "
                             f"({_mb(_free_bytes(folder))} MB free); free some space or write elsewhere") from None


def _is_no_space(exc: BaseException, folder: Path) -> bool:
    for cause in (exc, exc.__cause__, exc.__context__):
        if isinstance(cause, OSError) and cause.errno in (errno.ENOSPC, errno.EDQUOT):
            return True
    return (isinstance(exc, RuntimeError) and any(s in str(exc) for s in _TORCH_WRITE_FAILED)
            and _free_bytes(folder) < _LOW_SPACE_BYTES)


def _free_bytes(folder: Path) -> int:
    """Free bytes for this user where ``folder`` (or its nearest existing parent) lies."""
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    try:
        return shutil.disk_usage(folder).free
    except OSError:
        return 0


def _mb(size: int) -> str:
    """Bytes as MB (1e6 bytes) to a useful precision: 376, 4.2, 0.012."""
    mb = size / 1e6
    return f"{mb:.0f}" if mb >= 10 else f"{mb:.1f}" if mb >= 0.1 or mb == 0 else f"{max(mb, 0.001):.3f}"


def check_free_space(folder: str | Path, needed: int, what: str) -> None:
    """Refuse, before a long run, to start when ``folder``'s disk has less than ``needed`` bytes free for ``what``."""
    free = _free_bytes(Path(folder))
    if free < needed:
        raise FacebenchError(f"no space left on device for {what}: {_mb(needed)} MB needed, {_mb(free)} MB free in "
                             f"{folder}; free some space or write elsewhere")


@contextmanager
def foreign_file(path: str | Path, expected: str) -> Iterator[None]:
    """Around a third-party library reading a file the user named (ONNX Runtime, OpenVINO, torch.load, OpenCV,
    dlib): whatever it raises becomes one line naming the file and what was expected (exit 2)."""
    try:
        yield
    except FacebenchError:
        raise
    except Exception as exc:  # each library raises its own types (protobuf, RuntimeError, pickle, cv2.error, ...)
        text = str(exc).strip()
        reason = (text.splitlines()[0] if text else type(exc).__name__)[:200]
        raise FacebenchError(f"{path}: cannot be read as {expected} ({reason}); check the file or pick another"
                             ) from None


def _fsync(path: Path, flags: int) -> None:
    fd = os.open(path, flags)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def remove_stale_temps(folder: str | Path, min_age_s: float = 60.0) -> list[Path]:
    """Delete the temporary files that killed writes (``atomic_path``) left in ``folder``; returns them.

    Only for a folder whose lock the caller holds (``facebench.runlock``), so no locked writer is live
    there; files changed in the last ``min_age_s`` are left to any unlocked writer (an export) still at work.
    """
    before = time.time() - min_age_s
    stale = [p for p in Path(folder).iterdir()
             if TEMP_NAME.fullmatch(p.name) and p.is_file() and p.stat().st_mtime < before]
    for path in stale:
        path.unlink(missing_ok=True)
    return stale


def check_output_dir(path: str | Path, option: str) -> None:
    """Refuse, before any work, an output folder that is a file or that cannot be made or written in."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise FacebenchError(f"{option} {path}: a file, not a folder; give a folder path (or move the file away)")
    _check_writable(path, option, path)


def check_output_file(path: str | Path, option: str) -> None:
    """Refuse, before any work, an output file that is a folder or whose folder cannot be made or written in."""
    path = Path(path)
    if path.is_dir():
        raise FacebenchError(f"{option} {path}: a folder, not a file; give a file path (e.g. a new name inside it)")
    _check_writable(path.parent, option, path)


def _check_writable(folder: Path, option: str, path: Path) -> None:
    """``folder``, or the nearest of its parents that exists, must be a folder this process can write in."""
    existing = folder
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise FacebenchError(f"{option} {path}: {existing} is a file, so no folder can be made there; "
                             "choose another path")
    if not os.access(existing, os.W_OK | os.X_OK) or not _can_create_in(existing):
        raise FacebenchError(f"{option} {path}: cannot write in {existing} (permission denied or read-only); "
                             "choose a folder you can write to")


def _can_create_in(folder: Path) -> bool:
    """Whether a file can be made in ``folder`` (a probe, removed at once)."""
    try:
        fd, name = tempfile.mkstemp(prefix=PROBE_PREFIX, dir=folder)
    except OSError:
        return False
    os.close(fd)
    os.unlink(name)
    return True


def _default_file_mode() -> int:
    """0o666 masked by the process umask: the mode ``open(path, 'w')`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def read_text_input(path: str | Path) -> str:
    """A text file the user gives (pairs, CSV, index, property, JSON): UTF-8 with or without the byte-order mark
    Windows editors write, any line ending (CRLF and CR read as LF)."""
    return Path(path).read_text(encoding="utf-8-sig")


def write_text_atomic(path: str | Path, text: str, *, durable: bool = False) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically (``durable``: fsynced, see ``atomic_path``)."""
    with atomic_path(path, durable=durable) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any, *, durable: bool = False) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (NaN written as null; ``durable``: fsynced)."""
    write_text_atomic(path, json.dumps(_nan_to_none(data), indent=2, sort_keys=False) + "\n", durable=durable)


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


_JSON_NAMES = {dict: "object", list: "list", str: "string"}


def read_json(
    path: str | Path, required: dict[str, type] | None = None, fix: str = "rerun the step that wrote it"
) -> dict[str, Any]:
    """A JSON object from ``path`` holding the ``required`` keys (name -> type); a broken file ->
    FacebenchError naming file and line, a missing key or one of another type -> naming file and key,
    each ending with ``fix``."""
    try:
        data = json.loads(read_text_input(path))
    except json.JSONDecodeError as exc:
        raise FacebenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); {fix}") from None
    except OSError as exc:
        raise FacebenchError(f"{path}: unreadable ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise FacebenchError(f"{path}: expected a JSON object at the top level; {fix}")
    for key, kind in (required or {}).items():
        if not isinstance(data.get(key), kind):
            raise FacebenchError(f"{path}: no {key!r} {_JSON_NAMES.get(kind, kind.__name__)} in it; it is damaged or "
                                 f"not facebench's, {fix}")
    return data


def cache_dir() -> Path:
    """facebench's cache folder: $FACEBENCH_CACHE, else $XDG_CACHE_HOME/facebench, else ~/.cache/facebench."""
    if os.environ.get("FACEBENCH_CACHE"):
        return Path(os.environ["FACEBENCH_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "facebench"
