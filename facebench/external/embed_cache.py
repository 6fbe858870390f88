"""Embeddings kept on disk, keyed by image content and by the model and settings that made them.

A frozen model that is slow on a CPU (an external teacher such as dlib, about 0.1 s a face)
should embed each image once: later verify runs and every distillation epoch read the
stored result instead. An entry is found by the SHA-256 of the image's encoded bytes, so
a renamed or copied file still hits and an edited one misses. The model key (a name plus a
hash of its weights and preprocessing settings, chosen by the caller) names the folder,
so two models or two settings never share entries.

Layout: ``<cache_dir>/embeddings/<key>/<digest[:2]>/<digest>.npz``, one small file per
image, each written atomically, so concurrent runs and interrupted runs are safe. An
unreadable entry counts as missing and is rewritten.
"""

from __future__ import annotations

import hashlib
import zipfile
from pathlib import Path

import numpy as np

from facebench.fileio import atomic_path


def content_digest(data: bytes) -> str:
    """SHA-256 hex digest of an image's encoded bytes: the cache key of that image."""
    return hashlib.sha256(data).hexdigest()


def default_root() -> Path:
    """``<facebench cache folder>/embeddings`` ($FACEBENCH_CACHE, else ~/.cache/facebench)."""
    from facebench.data.mtcnn_weights import cache_dir

    return cache_dir() / "embeddings"


class EmbeddingCache:
    """Named arrays per image digest under one model key."""

    def __init__(self, key: str, root: str | Path | None = None) -> None:
        if not key or "/" in key or key.startswith("."):
            raise ValueError(f"cache key must be a plain folder name, got {key!r}")
        self.folder = Path(root) if root is not None else default_root()
        self.folder = self.folder / key

    def path(self, digest: str) -> Path:
        """Where the entry of ``digest`` lives."""
        return self.folder / digest[:2] / f"{digest}.npz"

    def load(self, digest: str) -> dict[str, np.ndarray] | None:
        """The stored arrays of ``digest``, or None when absent or unreadable."""
        path = self.path(digest)
        if not path.is_file():
            return None
        try:
            with np.load(path, allow_pickle=False) as entry:
                return {name: entry[name] for name in entry.files}
        except (OSError, ValueError, EOFError, zipfile.BadZipFile):
            return None

    def save(self, digest: str, **arrays: np.ndarray) -> None:
        """Store ``arrays`` for ``digest`` atomically (replacing any earlier entry)."""
        with atomic_path(self.path(digest)) as tmp:
            np.savez(tmp, **arrays)
