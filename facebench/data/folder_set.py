"""An identity-folder set for the all-pairs protocol: every image of ``root/<identity>/<image>``, labelled.

``verify --folders NAME=DIR`` scores every pair of distinct images of such a set (genuine = same folder), so
the set is refused before any embedding when it cannot make both kinds of pair: fewer than two identities, or
no identity with two images. A file inside an identity folder that is not an image (by suffix) is refused
too, naming it: a stray file in a face set is a mistake worth hearing about, not something to skip silently.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.data.folders import scan_identity_folders
from facebench.data.images import IMAGE_SUFFIXES
from facebench.errors import FacebenchError


@dataclass
class FolderSet:
    """Every image of an identity-folder tree, in sorted identity then file-name order."""

    name: str
    source: str  # the root folder
    images: list[str]  # image paths
    labels: np.ndarray  # int64 (N,): identity index, sorted identity names
    identities: list[str]

    def __len__(self) -> int:
        return len(self.images)


def _check_files(root: Path, identities: list[str]) -> None:
    """Refuse a non-image file inside an identity folder (hidden files are ignored)."""
    for identity in identities:
        for path in sorted((root / identity).iterdir()):
            if path.is_file() and not path.name.startswith(".") and path.suffix.lower() not in IMAGE_SUFFIXES:
                raise FacebenchError(f"{path}: not an image ({', '.join(IMAGE_SUFFIXES)}); an identity folder holds "
                                     "only face images: move it out of the set")


def load_folder_set(name: str, root: str | Path) -> FolderSet:
    """Read ``root/<identity>/<image>`` and refuse a set without both genuine and impostor pairs."""
    folders = scan_identity_folders(root)
    root = Path(root)
    _check_files(root, folders.identities)
    labels = np.asarray(folders.labels, dtype=np.int64)
    sizes = np.bincount(labels)
    if len(sizes) < 2:
        raise FacebenchError(f"{root}: one identity ({folders.identities[0]}); every pair would be genuine: the "
                             "all-pairs protocol needs at least two identity folders")
    if sizes.max() < 2:
        raise FacebenchError(f"{root}: every one of its {len(sizes)} identities has a single image, so there are no "
                             "genuine pairs: the all-pairs protocol needs identities with two or more images")
    return FolderSet(name, str(root), [str(p) for p in folders.files], labels, folders.identities)
