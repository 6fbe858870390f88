"""One run at a time per output folder: a lock file in the folder, held while a command writes there.

``.facebench.lock`` holds the holder's pid, host and start time. A second run into a locked
folder is refused with one line naming the holder; a lock left by a process that died on this
host is taken over (a lock from another host is refused: its process cannot be checked from
here). Whoever takes the lock removes the temporary files that killed writes left in the
folder a minute or more ago (``fileio.remove_stale_temps``): no locked writer is live there.
Locking checks the folder first (``fileio.check_output_dir``); a folder the lock made is
removed on release if the command left it empty.
"""

from __future__ import annotations

import fcntl
import os
import socket
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from types import TracebackType
from typing import Any

from facebench.errors import FacebenchError
from facebench.fileio import check_output_dir, read_json, remove_stale_temps, write_json_atomic

LOCK_NAME = ".facebench.lock"


class FolderLock:
    """``with FolderLock(folder, "--out"):`` the folder is this process's until the block ends."""

    def __init__(self, folder: str | Path, option: str) -> None:
        self.folder = Path(folder)
        self.option = option  # how the user named the folder, for messages
        self.path = self.folder / LOCK_NAME
        self.holder = {"pid": os.getpid(), "host": socket.gethostname(), "token": uuid.uuid4().hex,
                       "since": time.strftime("%Y-%m-%d %H:%M:%S")}  # fmt: skip
        self._made: Path | None = None  # the topmost folder the lock created

    def __enter__(self) -> FolderLock:
        check_output_dir(self.folder, self.option)
        self._made = _topmost_missing(self.folder)
        self.folder.mkdir(parents=True, exist_ok=True)
        try:
            with _exclusive(self.folder):
                other = _read_holder(self.path)
                if other is not None and _alive(other):
                    raise FacebenchError(_refusal(self.folder, self.path, other, self.option))
                write_json_atomic(self.path, self.holder)
            remove_stale_temps(self.folder)
        except BaseException:
            self._remove_made()
            raise
        return self

    def __exit__(self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None) -> None:
        if not self.folder.is_dir():  # moved away while the command ran: nothing to release
            return
        with _exclusive(self.folder):
            other = _read_holder(self.path)
            if other is not None and other.get("token") == self.holder["token"]:
                self.path.unlink(missing_ok=True)
        self._remove_made()

    def _remove_made(self) -> None:
        """Remove the folders the lock made, innermost first, as long as they are empty."""
        if self._made is None:
            return
        folder = self.folder
        while True:
            try:
                folder.rmdir()
            except OSError:  # not empty (the command wrote there) or already gone
                return
            if folder == self._made:
                return
            folder = folder.parent


def _topmost_missing(folder: Path) -> Path | None:
    """The outermost of ``folder`` and its parents that does not exist yet (None: ``folder`` exists)."""
    missing = None
    while not folder.exists() and folder != folder.parent:
        missing, folder = folder, folder.parent
    return missing


@contextmanager
def _exclusive(folder: Path) -> Iterator[None]:
    """A kernel lock on the folder itself for reading and replacing the lock file (no two takers at once)."""
    fd = os.open(folder, os.O_RDONLY)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)  # releases the flock


def _read_holder(path: Path) -> dict[str, Any] | None:
    """The lock file's holder; None when there is none, or it is unreadable (never a live lock: writes are atomic)."""
    if not path.is_file():
        return None
    try:
        return read_json(path)
    except FacebenchError:
        return None


def _alive(holder: dict[str, Any]) -> bool:
    """Whether the holder may still run: another host's cannot be checked (so yes); on this host, its pid lives."""
    if holder.get("host") != socket.gethostname():
        return True
    pid = holder.get("pid")
    if not isinstance(pid, int) or pid <= 0 or pid == os.getpid():  # our own pid: a reused one, left by a dead run
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's live process
        return True
    return True


def _refusal(folder: Path, path: Path, holder: dict[str, Any], option: str) -> str:
    where = f"pid {holder.get('pid')} on {holder.get('host')}, since {holder.get('since')}"
    gone = f"; if that run is gone, delete {path}" if holder.get("host") != socket.gethostname() else ""
    return f"{folder}: another facebench run ({where}) is writing there; wait for it or choose another {option}{gone}"
