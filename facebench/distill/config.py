"""``facebench distill``'s options: ``TrainConfig`` (the student's training) plus teacher, method and its weights.

No torch import, so the CLI can show defaults instantly. ``model`` is the student (what
``facebench report`` reads as ``config.model``); ``method`` is ``none``, ``kd``, ``adv`` or ``emb``.
"""

from __future__ import annotations

from dataclasses import dataclass

from facebench.train.config import TrainConfig

METHODS = ("none", "kd", "adv", "emb")
EMB_LOSSES = ("cosine", "l2", "relational")
ADV_LOSSES = ("lsgan", "bce")
# weight of the distillation term next to the margin loss when --alpha is not given (see facebench.distill.methods)
DEFAULT_ALPHA = {"kd": 1.0, "adv": 10.0, "emb": 50.0}
RELATIONAL_ALPHA = 2000.0  # emb with --emb-loss relational: its own gradient scale (facebench.distill.methods)


@dataclass
class DistillConfig(TrainConfig):
    """The student's training options plus the teacher, the method and its hyper-parameters."""

    teacher: str = ""  # zoo name (-> runs/<name>), run folder or checkpoint file, as given
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
