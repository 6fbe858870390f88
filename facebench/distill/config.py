"""``facebench distill``'s options and methods: ``TrainConfig`` (the student's training) plus teacher,
method and its weights; and the one registration of each distillation method.

No torch import, so the CLI can show defaults instantly. ``model`` is the student (what
``facebench report`` reads as ``config.model``); ``method`` is a key of ``METHODS``.

A method is registered once, in ``METHODS``: its name, how tables, figures and summaries
show it, what it needs from the teacher and its default weight. Its loss is the builder
of the same name in ``facebench.distill.methods`` (``@builds(name)``); bench, report and
the CLI read everything else from here, so a new method is one entry plus its loss.
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.train.config import TrainConfig

LOGITS, FEATURES, EMBEDDING = "logits", "features", "embedding"  # what a method can need from the teacher


@dataclass(frozen=True)
class Method:
    """A distillation method as everything but its loss sees it."""

    name: str  # --method and config.json's config.method
    title: str  # the study's name, in Table 1, Figure 1 and the summary
    column: str  # Table 1's column id
    marker: str  # Figure 1's matplotlib marker
    needs: tuple[str, ...]  # teacher outputs: LOGITS, FEATURES, EMBEDDING; () = no teacher needed
    default_alpha: float | None  # weight of its term next to the margin loss without --alpha; None: no term
    description: str


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("none", "Vanilla", "vanilla", "o", (), None,
           "the student alone (margin loss only); a teacher is only recorded"),
    Method("kd", "SL KD", "kd", "s", (LOGITS,), 1.0,
           "margin loss + alpha T^2 KL of margin-free logits (Hinton 2015)"),
    Method("adv", "ADV KD", "adv", "^", (FEATURES,), 10.0,
           "margin loss + fooling a feature-map discriminator (Chung et al. 2020)"),
    Method("emb", "EMB KD", "emb", "D", (EMBEDDING,), 50.0,
           "margin loss + alpha x distance of normalised embeddings (or relational: of their pairwise distances)"),
)}  # fmt: skip
EMB_LOSSES = ("cosine", "l2", "relational")
ADV_LOSSES = ("lsgan", "bce")
# weight of the distillation term next to the margin loss when --alpha is not given (see facebench.distill.methods)
DEFAULT_ALPHA = {name: m.default_alpha for name, m in METHODS.items() if m.default_alpha is not None}
RELATIONAL_ALPHA = 2000.0  # emb with --emb-loss relational: its own gradient scale (facebench.distill.methods)


@dataclass
class DistillConfig(TrainConfig):
    """The student's training options plus the teacher, the method and its hyper-parameters."""

    teacher: str = ""  # zoo name (-> runs/<name>), run folder, checkpoint, .onnx/.xml file or external name, as given
    teacher_weights: str | None = None  # weights for a zoo-name teacher (pretrained mfn128), as given
    method: str = ""
    alpha: float | None = None  # None -> DEFAULT_ALPHA[method]
    temperature: float = 4.0  # kd: softmax temperature T
    emb_loss: str | None = None  # emb: cosine (1 - cos), l2 (squared distance of unit vectors) or relational
    # (pairwise distances, RKD-D); None -> cosine when teacher and student embeddings have one size, else relational
    adv_loss: str = "lsgan"  # adv: least-squares GAN or binary cross-entropy
    disc_optimizer: str = "adamw"  # adv: the discriminator's own optimiser
    disc_lr: float = 2e-4  # adv: its peak learning rate (same warm-up and schedule as the student)
    disc_weight_decay: float = 0.0
    disc_hidden: int = 128  # adv: channels of the discriminator's convolutions

    def resolved_alpha(self) -> float:
        if self.alpha is not None:
            return self.alpha
        if self.method == "emb" and self.emb_loss == "relational":
            return RELATIONAL_ALPHA
        return DEFAULT_ALPHA.get(self.method, 0.0)

    def resolve_emb_loss(self, teacher_size: int) -> None:
        """Fill in the default --emb-loss: cosine between equal-size embeddings, relational between unequal ones."""
        if self.emb_loss is None:
            self.emb_loss = "cosine" if teacher_size == self.embedding_size else "relational"
