"""The distillation methods' losses: each registered method (``facebench.distill.config.METHODS``) has a
builder here that turns the plain student objective into an engine ``Plan``.

Every method keeps the student's own margin loss (ArcFace by default) and adds one
weighted term, logged under its own metrics.csv column (``loss_<term>``, weight included):

- ``none``: the student alone, under exactly the settings of the others (same seed, same
  initial weights, same data order); a given teacher is only recorded, so the report puts
  this run in the teacher's row as its Vanilla cell.
- ``kd`` (the study's SL KD; Hinton et al. 2015): ``kd`` = alpha * T^2 * KL(softmax(z_t/T)
  || softmax(z_s/T)). **No margin in the KD logits**: z_t and z_s are each head's scaled
  cosines s*cos(theta) over the same classes. The margin is a training device applied to
  the labelled class only; in the teacher it would understate exactly the class it knows
  best, and in the student it would make KL = 0 demand cosines that differ from the
  teacher's. Margin-free, KL = 0 exactly when the student's class cosines equal the
  teacher's; the margin stays in the student's own ArcFace term. A teacher without a head
  over these classes (pretrained weights, an exported file, dlib) first gets one fitted on
  its frozen embeddings of the training set (``facebench.distill.fitted_head``), whose
  classes are the student's by construction.
- ``emb``: ``emb`` = alpha * (1 - cos) (or the squared distance) between the normalised
  student and teacher embeddings, which needs equal embedding sizes; between unequal ones
  (dlib's 128-d teacher, a 512-d student) the default is ``relational``: alpha * RKD-D,
  the Huber gap between the two models' pairwise distances within the batch, each divided
  by its batch mean (``facebench.distill.losses``). Chosen over a learned 512->128
  projection because verification reads the student's own distances: a projection would
  constrain only a 128-d image of the 512-d embedding (384 directions left free, and the
  projection dropped at inference), while the relational term constrains the very
  distances that verification thresholds, with no extra parameters.
- ``adv`` (the study's ADV KD; Chung, Park, Kim, Kwak, ICML 2020): a discriminator on the
  last feature maps, teacher maps real, student maps (through a 1x1 conv + BN transfer
  where the channels differ) fake. Two objectives per step, alternately: the student
  (backbone, head, transfer) minimises ArcFace + ``adv_g`` = alpha * generator loss; then
  the discriminator, with its own optimiser and learning rate, minimises ``adv_d`` on the
  teacher maps and the student maps of that step (detached). **Deviation from the paper:**
  the paper trains two or more networks online, each the other's teacher, with a
  discriminator per network and a logit-KD term; here, as in the study this project
  reproduces, the teacher is pre-trained and frozen, so only the student learns from the
  discriminator and no logit term is added (``kd`` measures that on its own).

Default weights (``--alpha``, ``facebench.distill.config.DEFAULT_ALPHA``): kd 1, the
usual choice (the T^2 factor already keeps soft-target gradients on the hard-label
scale); adv 10 and emb 50, picked so that, as for kd, each term's gradient on the
student backbone starts at about half to two-thirds of ArcFace's. ArcFace at s = 64
gives large gradients (1 - cos lies in [0, 2], its cross-entropy starts near 40).
Measured on one CelebA batch of 32, untrained mobilenet student, r18 teacher, gradient
L2 norm over the backbone: ArcFace 1352; kd (alpha 1, T 4) 864; emb per unit alpha
13.9; adv generator per unit alpha 7.2 (untrained discriminator).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace

import torch
from torch.utils.data import Dataset

from facebench.distill.adversarial import Discriminator, make_transfer
from facebench.distill.config import FEATURES, LOGITS, METHODS, DistillConfig, Method
from facebench.distill.losses import (
    discriminator_loss,
    embedding_loss,
    generator_loss,
    kd_loss,
    relational_loss,
)
from facebench.distill.teacher import TEACHER_KEY, Teacher, check_class_set
from facebench.errors import FacebenchError
from facebench.train.engine import MODEL_KEY, Objective, Step
from facebench.train.losses import HEAD_KEY, margin_loss
from facebench.train.run import Plan

TRANSFER_KEY, DISCRIMINATOR_KEY = "transfer", "discriminator"
Builder = Callable[[DistillConfig, "Teacher | None", Objective, Dataset], Plan]


@dataclass(frozen=True)
class MethodSpec:
    """A registered method (``facebench.distill.config.METHODS``) with the builder of its plan."""

    method: Method
    build: Builder

    @property
    def name(self) -> str:
        return self.method.name

    @property
    def needs(self) -> tuple[str, ...]:
        return self.method.needs


_BUILDERS: dict[str, Builder] = {}


def builds(name: str) -> Callable[[Builder], Builder]:
    """Decorator naming the builder of registered method ``name`` (unregistered or twice: a programming error)."""

    def decorate(build: Builder) -> Builder:
        if name not in METHODS or name in _BUILDERS:
            raise ValueError(f"distillation method {name!r} is not registered in METHODS or already has a builder")
        _BUILDERS[name] = build
        return build

    return decorate


def list_methods() -> list[str]:
    """Registered method names, in registration order."""
    return list(METHODS)


def method_spec(name: str) -> MethodSpec:
    """The method ``name`` with its builder; unknown or missing names raise FacebenchError listing the valid ones."""
    if name not in METHODS:
        given = f"--method {name!r} is not one of" if name else "give --method, one of"
        raise FacebenchError(f"{given}: {', '.join(list_methods())}")
    return MethodSpec(METHODS[name], _BUILDERS[name])


def require(teacher: Teacher, spec: MethodSpec) -> None:
    """Refuse, in one line, a method that needs outputs this teacher does not have."""
    if LOGITS in spec.needs and teacher.num_classes is None and teacher.without_logits:
        raise FacebenchError(f"--method {spec.name} needs class logits from the teacher, and {teacher.label} has none "
                             f"({teacher.without_logits}); use --method emb")
    if FEATURES in spec.needs and teacher.feature_channels is None:
        raise FacebenchError(f"--method {spec.name} needs the teacher's feature maps, and {teacher.label} has none "
                             f"({teacher.without_features}); use --method emb")


def _info(teacher: Teacher | None) -> dict:
    return {"teacher": teacher.record()} if teacher is not None else {}


@builds("none")
def _none(config: DistillConfig, teacher: Teacher | None, student: Objective, dataset: Dataset) -> Plan:
    return Plan([student], info=_info(teacher))


@builds("kd")
def _kd(config: DistillConfig, teacher: Teacher, student: Objective, dataset: Dataset) -> Plan:
    if teacher.num_classes is None:
        teacher.fit_head(dataset)
    else:
        check_class_set(teacher, dataset, config.data)
    alpha, temperature, needs = config.resolved_alpha(), config.temperature, METHODS["kd"].needs

    def loss(step: Step) -> dict[str, torch.Tensor]:
        terms = margin_loss(step)
        student_logits = step.modules[HEAD_KEY](step.cache["embedding"])  # labels=None: s*cos, no margin
        teacher_logits = teacher.outputs(step, needs).logits
        terms["kd"] = alpha * kd_loss(student_logits, teacher_logits, temperature)
        return terms

    return Plan([replace(student, loss=loss)], teacher.modules(), _info(teacher))


@builds("adv")
def _adv(config: DistillConfig, teacher: Teacher, student: Objective, dataset: Dataset) -> Plan:
    channels = teacher.feature_channels
    transfer = make_transfer(student.modules[MODEL_KEY].feature_channels, channels)
    discriminator = Discriminator(channels, hidden=config.disc_hidden)
    alpha, kind, needs = config.resolved_alpha(), config.adv_loss, METHODS["adv"].needs

    def student_loss(step: Step) -> dict[str, torch.Tensor]:
        terms = margin_loss(step)
        fake = step.modules[TRANSFER_KEY](step.cache["features"])
        real = teacher.outputs(step, needs).features
        if fake.shape != real.shape:
            raise FacebenchError(f"--method adv: student maps {tuple(fake.shape[1:])} and teacher maps "
                                 f"{tuple(real.shape[1:])} differ in size; pick models with equal feature-map sizes")
        step.cache["fake_maps"] = fake.detach()
        terms["adv_g"] = alpha * generator_loss(step.modules[DISCRIMINATOR_KEY](fake), kind)
        return terms

    def discriminator_step(step: Step) -> dict[str, torch.Tensor]:
        judge = step.modules[DISCRIMINATOR_KEY]
        real = step.cache[TEACHER_KEY].features
        return {"adv_d": discriminator_loss(judge(real), judge(step.cache["fake_maps"]), kind)}

    student = replace(student, modules={**student.modules, TRANSFER_KEY: transfer}, loss=student_loss)
    judge = Objective("discriminator", {DISCRIMINATOR_KEY: discriminator}, discriminator_step,
                      optimizer=config.disc_optimizer, lr=config.disc_lr, weight_decay=config.disc_weight_decay)
    return Plan([student, judge], teacher.modules(), _info(teacher))


@builds("emb")
def _emb(config: DistillConfig, teacher: Teacher, student: Objective, dataset: Dataset) -> Plan:
    config.resolve_emb_loss(teacher.embedding_size)
    kind = config.emb_loss
    if kind != "relational" and teacher.embedding_size != config.embedding_size:
        raise FacebenchError(
            f"--method emb --emb-loss {kind} compares embeddings: teacher {teacher.label} gives "
            f"{teacher.embedding_size}-d, the student {config.embedding_size}-d; pass --embedding-size "
            f"{teacher.embedding_size} or --emb-loss relational"
        )
    alpha, needs = config.resolved_alpha(), METHODS["emb"].needs

    def loss(step: Step) -> dict[str, torch.Tensor]:
        terms = margin_loss(step)
        target = teacher.outputs(step, needs).embedding
        if kind == "relational":
            terms["emb"] = alpha * relational_loss(step.cache["embedding"], target)
        else:
            terms["emb"] = alpha * embedding_loss(step.cache["embedding"], target, kind)
        return terms

    return Plan([replace(student, loss=loss)], teacher.modules(), _info(teacher))
