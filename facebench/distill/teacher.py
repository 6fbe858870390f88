"""The teacher: a frozen model that gives embeddings, and where it can, class logits and feature maps.

``Teacher`` is what the distillation methods call. It always provides embeddings; class
logits (``num_classes`` set) and last feature maps (``feature_channels`` set) only where
the model has them, and each method states which it needs (``facebench.distill.methods``),
so a teacher without them is refused with one line before any work. Outputs are computed
once per training step under ``no_grad`` and shared by every objective of that step.

``ZooTeacher`` is a zoo model from a facebench checkpoint, found by ``facebench.modelspec``'s
rules for ``--teacher``: a run folder gives its ``checkpoint.pt`` -- the final weights, and
the only file that also holds the margin head (in its training state; ``best.pt`` keeps
the backbone alone), so every method distils from the same file, whose SHA-256
config.json records; a bare zoo name (``r101``) means ``runs/<name>/``. Its logits are the head's scaled cosines s*cos(theta) *without* the
margin (see ``facebench.distill.methods``).

A zoo name with ``--teacher-weights FILE`` (``mfn128`` and its pretrained weights) is a
``ZooTeacher`` without a margin head; ``kd`` fits one on its frozen embeddings of the
training set first (``Teacher.fit_head``, ``facebench.distill.fitted_head``), as for every
embeddings-only teacher. A teacher whose input spec differs from the
student's (``facebench.input_spec``: mfn128 was trained on ImageNet statistics) gets the
student's batch renormalised to its own, a per-channel affine map, so both see the same
crop. ``DeployedTeacher`` is an exported file (``.onnx``, ``.xml``) run by its runtime on
the same batch: embeddings only.

``ExternalTeacher`` is an external pretrained model (``--teacher dlib``): embeddings
only (``num_classes = feature_channels = None``: kd fits a head, adv is refused in one line).
It runs its own preprocessing on the original image, not on the student's 112x112 crop,
so ``prepare`` embeds every training image once before the first step -- through the
model's on-disk cache keyed by image content and model, so a second run, another method
or another epoch costs only the student -- and each step looks its batch up by dataset
index. The target is the teacher's embedding of the image as stored, whether or not the
student's crop was mirrored: a face and its mirror image are one identity, and the
relational term that compares unequal embeddings (``facebench.distill.losses``) reads
only distances between faces. (Mirror TTA would double the teacher's cost: dlib spends
about 0.1 s per image on one core.)
"""

from __future__ import annotations

import copy
import hashlib
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader, Dataset

from facebench.checkpoint import load_checkpoint
from facebench.data.transforms import eval_transform
from facebench.deploy import DeployedModel, load_deployed
from facebench.distill.config import EMBEDDING, FEATURES, LOGITS
from facebench.distill.fitted_head import cached_embeddings, fit_margin_head
from facebench.errors import FacebenchError
from facebench.external import ExternalModel, load_external
from facebench.input_spec import ARCFACE, InputSpec
from facebench.modelspec import RUNS_ROOT, TEACHER, ModelOptions, model_from_checkpoint, model_with_weights, parse_spec
from facebench.runfolder import file_sha256
from facebench.train.engine import Step

TEACHER_KEY = "teacher"  # its modules in the engine's frozen set: "teacher", "teacher_head"
HEAD_MODULE = f"{TEACHER_KEY}_head"
EMBED_BATCH = 64  # images per teacher forward when embedding the training set for a fitted head


@dataclass
class TeacherOutputs:
    """One batch through the teacher."""

    embedding: torch.Tensor  # (N, E), not normalised
    logits: torch.Tensor | None = None  # (N, classes): s*cos(theta) over its classes, no margin
    features: torch.Tensor | None = None  # (N, C, 7, 7): its last feature map


class Teacher(ABC):
    """A frozen model a student learns from (see the module docstring)."""

    name: str  # zoo or external model name (config.json teacher.model)
    checkpoint: str  # the file that holds it (config.json teacher.checkpoint)
    sha256: str  # SHA-256 of that file's bytes (config.json teacher.sha256)
    embedding_size: int
    num_classes: int | None = None  # classes of its margin head; None: no class logits (yet)
    feature_channels: int | None = None  # channels of its last feature map; None: no feature maps
    without_logits: str = ""  # why kd may not fit a head on its embeddings ("": it may), to finish the refusal
    without_features: str = ""  # why feature_channels is None
    data: str | None = None  # what it was trained on, as its config recorded it
    student_spec: InputSpec = ARCFACE  # how the batches it is given are normalised (the student's input spec)
    head: nn.Module | None = None  # its margin head (saved or fitted): logits = s*cos(theta), no margin
    fitted_head: dict[str, Any] | None = None  # how the head was fitted (facebench.distill.fitted_head)

    @property
    def label(self) -> str:
        return f"{self.name} ({self.checkpoint})"

    def modules(self) -> dict[str, nn.Module]:
        """Its torch modules, for the engine to place on the device frozen (eval, no grad); may be empty."""
        return {HEAD_MODULE: self.head} if self.head is not None else {}

    def prepare(self, dataset: Dataset) -> None:
        """Anything to do once for the training data before the first step (default: nothing)."""

    @abstractmethod
    def compute(self, step: Step, needs: Sequence[str]) -> TeacherOutputs:
        """The embedding for ``step``'s batch, and the feature maps when ``needs`` names them."""

    def outputs(self, step: Step, needs: Sequence[str]) -> TeacherOutputs:
        """``compute`` (plus the head's logits when needed) once per step, without gradients; later calls reuse it."""
        cached = step.cache.get(TEACHER_KEY)
        if cached is None:
            with torch.no_grad():
                cached = self.compute(step, needs)
                if LOGITS in needs and self.head is not None:
                    cached.logits = self.head(cached.embedding)
            step.cache[TEACHER_KEY] = cached
        return cached

    def embed_dataset(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """(N, E) embeddings of every training image, unflipped, through ``compute``; and the (N,) labels."""
        view = copy.copy(dataset)
        view.transform = eval_transform(self.student_spec)  # type: ignore[attr-defined]
        embeddings, labels, start = [], [], 0
        with torch.no_grad():
            for images, batch_labels in DataLoader(view, batch_size=EMBED_BATCH):
                indices = torch.arange(start, start + len(images))
                step = Step(images, batch_labels, indices, {}, step=0, epoch=0)
                embeddings.append(self.compute(step, (EMBEDDING,)).embedding.float().cpu())
                labels.append(batch_labels)
                start += len(images)
        return torch.cat(embeddings), torch.cat(labels)

    def fit_head(self, dataset: Dataset) -> None:
        """Fit a margin head over ``dataset``'s classes on this teacher's frozen embeddings (once per teacher)."""
        if self.head is None:
            spec = hashlib.sha256(self.student_spec.describe().encode()).hexdigest()[:12]
            key = f"{self.sha256[:32]}-{spec}"
            embeddings, labels = cached_embeddings(key, dataset, lambda: self.embed_dataset(dataset))
            self.head, self.fitted_head = fit_margin_head(embeddings, labels, dataset.num_classes)  # type: ignore[attr-defined]
            self.num_classes = self.head.num_classes

    def record(self) -> dict[str, Any]:
        """config.json's top-level ``teacher`` object (what ``facebench report`` links runs by)."""
        return {"model": self.name, "checkpoint": self.checkpoint, "sha256": self.sha256,
                "embedding_size": self.embedding_size, "num_classes": self.num_classes,
                "feature_channels": self.feature_channels, "data": self.data,
                **({"fitted_head": self.fitted_head} if self.fitted_head is not None else {})}  # fmt: skip


class ZooTeacher(Teacher):
    """A zoo backbone (and its margin head, when the checkpoint holds one), frozen."""

    def __init__(self, backbone: nn.Module, head: nn.Module | None, *, name: str, embedding_size: int,
                 checkpoint: Path, sha256: str, data: str | None, without_logits: str) -> None:
        self.backbone = backbone.eval().requires_grad_(False)
        self.head = head.eval().requires_grad_(False) if head is not None else None
        self.name = name
        self.checkpoint = str(checkpoint)
        self.sha256 = sha256
        self.data = data
        self.embedding_size = embedding_size
        self.feature_channels = int(backbone.feature_channels)
        self.num_classes = head.num_classes if head is not None else None
        self.without_logits = "" if head is not None else without_logits

    def modules(self) -> dict[str, nn.Module]:
        return {TEACHER_KEY: self.backbone, **super().modules()}

    def compute(self, step: Step, needs: Sequence[str]) -> TeacherOutputs:
        features = self.backbone.forward_features(self.backbone.input_spec.convert(step.images, self.student_spec))
        return TeacherOutputs(self.backbone.head(features), features=features if FEATURES in needs else None)


class _Sources(Sequence):
    """A dataset's stored images (paths or encoded bytes), read one at a time: MS1M does not fit in memory."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)  # type: ignore[arg-type]

    def __getitem__(self, index: int) -> str | bytes:  # type: ignore[override]
        return self.dataset.source(index)  # type: ignore[attr-defined]


class ExternalTeacher(Teacher):
    """An external pretrained model: embeddings of the original training images, computed once (module docstring)."""

    def __init__(self, model: ExternalModel, sha256: str) -> None:
        self.model = model
        self.name = model.name
        self.checkpoint = str(model.weights_file)
        self.sha256 = sha256
        self.embedding_size = model.embedding_size
        self.data = None  # trained elsewhere, by its authors
        self.without_features = f"{model.name} is an external model: its feature maps are not exposed to facebench"
        self.table: torch.Tensor | None = None

    @property
    def label(self) -> str:
        return f"{self.name} ({self.model.source})"

    def prepare(self, dataset: Dataset) -> None:
        if not hasattr(dataset, "source"):
            raise FacebenchError(f"--teacher {self.name} embeds the original images, and {type(dataset).__name__} "
                                 "cannot give them; train on identity folders or a train.rec")
        embeddings = self.model.embed_images(_Sources(dataset), flip=False, description="teacher embeddings")
        self.table = torch.from_numpy(embeddings)

    def embed_dataset(self, dataset: Dataset) -> tuple[torch.Tensor, torch.Tensor]:
        """The table ``prepare`` computed, and the dataset's labels."""
        if self.table is None:
            self.prepare(dataset)
        return self.table, _labels(dataset)

    def compute(self, step: Step, needs: Sequence[str]) -> TeacherOutputs:
        if self.table is None:
            raise RuntimeError("ExternalTeacher.compute before prepare(dataset)")
        return TeacherOutputs(self.table[step.indices].to(step.images.device))


class DeployedTeacher(Teacher):
    """An exported .onnx/.xml file, run by its runtime on the student's batch (renormalised): embeddings only."""

    def __init__(self, model: DeployedModel, sha256: str) -> None:
        self.model = model
        self.name = model.path.name
        self.checkpoint = str(model.path.resolve())
        self.sha256 = sha256
        self.embedding_size = _probe_embedding_size(model)
        self.without_features = f"{self.name} is an exported file: its feature maps are not exposed"

    def compute(self, step: Step, needs: Sequence[str]) -> TeacherOutputs:
        return TeacherOutputs(self.model(self.model.input_spec.convert(step.images, self.student_spec)))


def _labels(dataset: Dataset) -> torch.Tensor:
    """Every image's class label, without decoding images (identity folders or a train.rec)."""
    folders = getattr(dataset, "folders", None)
    if folders is not None:
        return torch.as_tensor(folders.labels)
    return torch.tensor([dataset.label(i) for i in range(len(dataset))])  # type: ignore[attr-defined]


def _output_size(backbone: nn.Module) -> int:
    """Embedding size of a zoo backbone: one forward of a zero batch."""
    with torch.inference_mode():
        return int(backbone.eval()(torch.zeros(1, 3, 112, 112)).shape[1])


def _probe_embedding_size(model: DeployedModel) -> int:
    """The embedding size of a deployed file: its sidecar's, else one forward of a zero batch."""
    if model.embedding_size is None:
        with torch.inference_mode():
            model(torch.zeros(1, 3, model.input_spec.size, model.input_spec.size))
    return int(model.embedding_size)


def _head_of(checkpoint: dict[str, Any], embedding_size: int, source: Path) -> nn.Module | None:
    """The margin head saved in a training checkpoint's state, or None (best.pt, bare weights)."""
    from facebench.models.heads import create_head
    from facebench.train.losses import HEAD_KEY

    state = checkpoint.get("extra", {}).get("training", {}).get("modules", {}).get(HEAD_KEY)
    if state is None:
        return None
    config = checkpoint.get("config", {})
    weight = state.get("fc.weight")
    if not isinstance(weight, torch.Tensor) or weight.ndim != 2:
        raise FacebenchError(f"{source}: its saved head has no 2-d fc.weight; the file is damaged or foreign")
    head = create_head(config.get("head", "arcface"), embedding_size, weight.shape[0],
                       scale=config.get("scale"), margin=config.get("margin"))
    try:
        head.load_state_dict(state)
    except RuntimeError as exc:
        raise FacebenchError(f"{source}: its saved head does not load ({str(exc).splitlines()[0]})") from None
    return head


def resolve_teacher(spec: str, runs_root: str | Path = RUNS_ROOT, options: ModelOptions = ModelOptions()) -> Teacher:
    """``--teacher``: the model ``spec`` names by facebench.modelspec's rules (zoo names: their run under
    ``runs_root``; with ``options.weights``: those weights), frozen on the CPU."""
    parsed = parse_spec(spec, TEACHER, Path(runs_root), weights=options.weights)
    options.check(parsed, "--teacher")
    if parsed.kind == "external":
        model = load_external(spec)
        return ExternalTeacher(model, file_sha256(model.weights_file))
    if parsed.kind == "deployed":
        deployed = load_deployed(parsed.path, options.runtime, options.input_spec)
        return DeployedTeacher(deployed, file_sha256(parsed.path))
    if parsed.kind == "weights":
        backbone = model_with_weights(parsed.name, parsed.path)
        return ZooTeacher(
            backbone, None, name=parsed.name, embedding_size=_output_size(backbone),
            checkpoint=parsed.path.resolve(), sha256=file_sha256(parsed.path), data=None, without_logits="",
        )  # fmt: skip
    path = parsed.path
    checkpoint = load_checkpoint(path)
    backbone = model_from_checkpoint(checkpoint, path)
    if not hasattr(backbone, "forward_features") or not hasattr(backbone, "head"):
        raise FacebenchError(f"{path}: {checkpoint['model']} is not a face backbone with forward_features")
    embedding_size = int(checkpoint["embedding_size"])
    head = _head_of(checkpoint, embedding_size, path)
    return ZooTeacher(
        backbone, head, name=checkpoint["model"], embedding_size=embedding_size, checkpoint=path.resolve(),
        sha256=file_sha256(path),
        data=checkpoint.get("config", {}).get("data"),
        without_logits=f"{path.name} keeps the backbone only; pass the run folder or its checkpoint.pt, which hold the head",
    )  # fmt: skip


def _identities(path: str | Path) -> list[str] | None:
    """Sorted identity names of an identity-folder tree (its class order), or None when not one."""
    from facebench.data.folders import scan_identity_folders

    path = Path(path)
    if not path.is_dir() or (path / "train.rec").is_file():
        return None
    try:
        return scan_identity_folders(path).identities
    except FacebenchError:
        return None


def check_class_set(teacher: Teacher, dataset: Dataset, data: str) -> None:
    """Class logits compare only over the same classes in the same order: refuse anything else in one line.

    Compares the class counts; and the identity names too when both the teacher's data and
    ``data`` are identity-folder trees that can be read here.
    """
    ours = getattr(dataset, "num_classes", None)
    theirs_names = _identities(teacher.data) if teacher.data else None
    folders = getattr(dataset, "folders", None)
    our_names = getattr(folders, "identities", None)
    why = ""
    if teacher.num_classes != ours:
        why = f"{teacher.num_classes} classes vs {ours}"
    elif theirs_names is not None and our_names is not None and theirs_names != our_names:
        first = next(k for k, (a, b) in enumerate(zip(theirs_names, our_names, strict=True)) if a != b)
        why = f"same count, different identities (class {first}: {theirs_names[first]!r} vs {our_names[first]!r})"
    if why:
        raise FacebenchError(
            f"--method kd needs the teacher's class set: teacher {teacher.label} was trained on "
            f"{teacher.data or 'unrecorded data'}, --data {data} differs ({why}); "
            "distil on the teacher's data, or use --method emb or adv"
        )
