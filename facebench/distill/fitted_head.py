"""A margin head fitted on a frozen pretrained teacher's embeddings, so ``kd`` can learn from it.

A pretrained teacher (``mfn128`` with ``--teacher-weights``, an exported file, dlib) has no
classifier over the student's training identities. ``fit_margin_head`` gives it one: an
ArcFace head over the training set's classes, trained on the teacher's embeddings of
every (unflipped) training image while the teacher stays frozen. The weights start at
the class means of the unit embeddings (nearest-centroid), then a few epochs of ArcFace
with AdamW sharpen them; everything is seeded, so a resumed run fits the same head. Its
kd logits are the scaled cosines s*cos(theta) *without* the margin, exactly as for a
trained zoo teacher's own head (``facebench.distill.methods``).

The embeddings are computed once (``Teacher.embed_dataset``) and kept on disk
(``cached_embeddings``: facebench's embedding cache, keyed by the teacher file's
SHA-256, the student's input spec and the training set as stored), so another kd run on
the same data skips the teacher's pass. Measured on the 5,373-image CelebA subset (259
identities) with the pretrained mfn128: that pass 3 min on one busy CPU core, the fit
about 1 s, training accuracy 89.9 % from the class means alone and 94.5 % after the fit.

This is a known adaptation, not the study's setting (there teacher and student were
trained on the same classes): the teacher's knowledge reaches the student only through
how its embedding space separates the student's identities.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from facebench.errors import FacebenchError
from facebench.external.embed_cache import EmbeddingCache
from facebench.models.heads import MarginHead, create_head

# Below half the training images classified right (without margin), most of the head's
# softmax mass sits on wrong identities: kd would pull the student towards noise, not
# towards the teacher's knowledge, so kd is refused rather than run.
MIN_TRAIN_ACCURACY = 0.5


@dataclass(frozen=True)
class FitSettings:
    """How the head is fitted (recorded in config.json's ``teacher.fitted_head``)."""

    head: str = "arcface"
    init: str = "class means"
    optimizer: str = "adamw"
    epochs: int = 20
    lr: float = 1e-2
    batch_size: int = 512
    seed: int = 0


def fit_margin_head(
    embeddings: torch.Tensor, labels: torch.Tensor, num_classes: int, settings: FitSettings = FitSettings()
) -> tuple[MarginHead, dict[str, Any]]:
    """An ArcFace head over ``num_classes`` fitted on frozen (N, E) ``embeddings``; with its record.

    Raises FacebenchError when its training accuracy is below ``MIN_TRAIN_ACCURACY``.
    """
    generator = torch.Generator().manual_seed(settings.seed)
    unit = F.normalize(embeddings.float(), dim=1)
    head = create_head(settings.head, unit.shape[1], num_classes)
    with torch.no_grad():
        head.fc.weight.zero_().index_add_(0, labels, unit)  # class sums: the same direction as the means
    optimizer = torch.optim.AdamW(head.parameters(), lr=settings.lr, weight_decay=0.0)
    for _ in range(settings.epochs):
        for batch in torch.randperm(len(unit), generator=generator).split(settings.batch_size):
            loss = F.cross_entropy(head(unit[batch], labels[batch]), labels[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    head.eval().requires_grad_(False)
    accuracy = train_accuracy(head, unit, labels)
    record = {**asdict(settings), "classes": num_classes, "images": len(unit), "train_accuracy": accuracy}
    if accuracy < MIN_TRAIN_ACCURACY:
        raise FacebenchError(f"--method kd: the head fitted on the teacher's embeddings classifies only "
                             f"{accuracy:.1%} of the training images right (needs {MIN_TRAIN_ACCURACY:.0%}): "
                             "too weak to teach; use --method emb")
    return head, record


def train_accuracy(head: MarginHead, embeddings: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of ``embeddings`` whose largest margin-free logit s*cos(theta) is their label's."""
    with torch.no_grad():
        return (head(embeddings).argmax(dim=1) == labels).float().mean().item()


def dataset_digest(dataset: Dataset) -> str:
    """SHA-256 naming a training set as stored: its crop rule and its files (identity folders: each image with its
    label; a train.rec: the .rec and .idx), each with size and modification time."""
    folders = getattr(dataset, "folders", None)
    if folders is not None:
        files = list(zip(folders.files, folders.labels, strict=True))
    else:
        files = [(dataset.paths.rec, -1), (dataset.paths.idx, -1)]  # type: ignore[attr-defined]
    stats = [(path, label, Path(path).stat()) for path, label in files]
    stamps = [f"{path}|{label}|{stat.st_size}|{stat.st_mtime_ns}" for path, label, stat in stats]
    return hashlib.sha256("\n".join([getattr(dataset, "align", ""), *stamps]).encode()).hexdigest()


def cached_embeddings(
    teacher_key: str, dataset: Dataset, embed: Callable[[], tuple[torch.Tensor, torch.Tensor]]
) -> tuple[torch.Tensor, torch.Tensor]:
    """(embeddings, labels) of ``dataset`` by the teacher ``teacher_key`` names: from the disk cache, else ``embed()``,
    then stored."""
    cache, digest = EmbeddingCache(f"fitted-head-{teacher_key}"), dataset_digest(dataset)
    stored = cache.load(digest)
    if stored is not None:
        return torch.from_numpy(stored["embeddings"]), torch.from_numpy(stored["labels"])
    embeddings, labels = embed()
    cache.save(digest, embeddings=embeddings.numpy(), labels=labels.numpy())
    return embeddings, labels
