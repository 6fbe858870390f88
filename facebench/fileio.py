"""facebench's own files: written atomically (a temporary file beside the target, then a
rename), read back with one clear line on damage.

A crash or a user error never leaves a half-written result behind; readers see the old
file or the new one, nothing in between.
"""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from facebench.errors import FacebenchError


@contextmanager
def atomic_path(path: str | Path) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; on success rename it onto ``path``.

    The temporary name keeps the target's suffix, so writers that infer a format from it
    (matplotlib, cv2.imwrite) behave the same.
    """
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{target.stem}.", suffix=target.suffix, dir=target.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        tmp.chmod(_default_file_mode())  # mkstemp makes 0600; results should read like any new file
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)


def _default_file_mode() -> int:
    """0o666 masked by the process umask: the mode ``open(path, 'w')`` would give."""
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def write_text_atomic(path: str | Path, text: str) -> None:
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_json_atomic(path: str | Path, data: Any) -> None:
    """Write ``data`` as indented JSON to ``path`` atomically (NaN written as null)."""
    write_text_atomic(path, json.dumps(_nan_to_none(data), indent=2, sort_keys=False) + "\n")


def _nan_to_none(value: Any) -> Any:
    if isinstance(value, float) and value != value:
        return None
    if isinstance(value, dict):
        return {k: _nan_to_none(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_nan_to_none(v) for v in value]
    return value


def read_json(path: str | Path) -> dict[str, Any]:
    """A JSON object from ``path``; a broken file -> FacebenchError naming file and line."""
    try:
        data = json.loads(Path(path).read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise FacebenchError(f"{path}:{exc.lineno}: not valid JSON ({exc.msg}); rerun the step that wrote it") from None
    except OSError as exc:
        raise FacebenchError(f"{path}: unreadable ({exc.strerror})") from None
    if not isinstance(data, dict):
        raise FacebenchError(f"{path}: expected a JSON object at the top level")
    return data
