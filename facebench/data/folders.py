"""Identity-folder datasets, ``root/<identity>/<image>`` (the CASIA-WebFace layout).

Labels are the positions of the identity names in sorted order, so the same folder
always gives the same labels (``pack`` and ``pairs`` use the same scan).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from facebench.data.images import IMAGE_SUFFIXES, check_align, load_face
from facebench.data.transforms import eval_transform
from facebench.errors import FacebenchError


@dataclass
class IdentityFolders:
    """The images of an identity-folder tree, one label per identity (sorted names)."""

    root: Path
    identities: list[str]                          # label -> identity name
    files: list[Path]                              # image paths, grouped by identity
    labels: list[int]                              # label of each file
    skipped: list[Path] = field(default_factory=list)  # unreadable images left out (skip_bad)


def list_images(folder: Path) -> list[Path]:
    """The image files of one identity folder, sorted by name (hidden files ignored)."""
    return sorted(
        p for p in folder.iterdir()
        if p.is_file() and not p.name.startswith(".") and p.suffix.lower() in IMAGE_SUFFIXES
    )


def scan_identity_folders(
    root: str | Path, *, min_images: int = 1, max_images: int | None = None
) -> IdentityFolders:
    """List ``root/<identity>/<image>``; identities with fewer than min_images are left out,
    and at most max_images (the first in name order) are kept per identity."""
    root = Path(root)
    if not root.is_dir():
        raise FacebenchError(f"{root}: not a folder; expected identity folders root/<identity>/<image>")
    if min_images < 1 or (max_images is not None and max_images < min_images):
        raise FacebenchError(
            f"min_images={min_images}, max_images={max_images}: need 1 <= min_images <= max_images"
        )
    folders = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    if not folders:
        raise FacebenchError(f"{root}: no identity folders inside; expected root/<identity>/<image>")
    identities: list[str] = []
    files: list[Path] = []
    labels: list[int] = []
    for folder in folders:
        images = list_images(folder)
        if not images:
            raise FacebenchError(f"{folder}: identity folder holds no images ({', '.join(IMAGE_SUFFIXES)}); "
                                 "add images or remove the folder")
        if len(images) < min_images:
            continue
        label = len(identities)
        identities.append(folder.name)
        kept = images[:max_images]
        files.extend(kept)
        labels.extend([label] * len(kept))
    if not identities:
        raise FacebenchError(f"{root}: no identity has at least {min_images} images")
    return IdentityFolders(root, identities, files, labels)


def drop_unreadable(folders: IdentityFolders, align: str) -> IdentityFolders:
    """Decode every image once and leave out those that fail (``skip_bad``); keeps labels."""
    from rich.progress import track

    files: list[Path] = []
    labels: list[int] = []
    skipped: list[Path] = []
    for path, label in track(list(zip(folders.files, folders.labels, strict=True)),
                             description="checking images", transient=True):
        try:
            load_face(str(path), align)
        except FacebenchError:
            skipped.append(path)
            continue
        files.append(path)
        labels.append(label)
    return IdentityFolders(folders.root, folders.identities, files, labels, skipped)


class IdentityFolderDataset(Dataset):
    """(3x112x112 normalised tensor, label) from identity folders.

    ``align`` picks the rule for images that are not 112x112 (see facebench.data.images);
    ``skip_bad`` decodes everything up front and leaves unreadable images out (listed in
    ``skipped``) instead of failing with the file's name when it is reached.
    """

    def __init__(
        self,
        root: str | Path,
        *,
        transform: Callable[[np.ndarray], torch.Tensor] | None = None,
        align: str = "center",
        min_images: int = 1,
        max_images: int | None = None,
        skip_bad: bool = False,
    ) -> None:
        self.align = check_align(align)
        self.transform = transform or eval_transform()
        folders = scan_identity_folders(root, min_images=min_images, max_images=max_images)
        self.folders = drop_unreadable(folders, align) if skip_bad else folders

    @property
    def num_classes(self) -> int:
        return len(self.folders.identities)

    @property
    def skipped(self) -> list[Path]:
        return self.folders.skipped

    def __len__(self) -> int:
        return len(self.folders.files)

    def source(self, index: int) -> str:
        """Image ``index`` as stored (its path), for a teacher with its own preprocessing."""
        return str(self.folders.files[index])

    def __getitem__(self, index: int) -> tuple[torch.Tensor, int]:
        face = load_face(str(self.folders.files[index]), self.align)
        return self.transform(face), self.folders.labels[index]
