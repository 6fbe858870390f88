"""Distillation loss terms as pure functions of tensors (formulas and sources beside each).

- ``kd_loss`` (Hinton, Vinyals, Dean 2015, "Distilling the Knowledge in a Neural
  Network"): T^2 * KL(softmax(z_t / T) || softmax(z_s / T)), averaged over the batch.
  The T^2 keeps the soft-target gradients on the scale of the hard-label ones when T
  changes (section 2 of the paper).
- ``embedding_loss``: between L2-normalised embeddings s, t: ``cosine`` = 1 - <s, t>;
  ``l2`` = |s - t|^2 = 2 - 2<s, t>. On unit vectors the two differ by exactly a factor
  2, i.e. only in weight; both are offered because face-KD papers state either.
- ``relational_loss`` (distance-wise relational KD, "RKD-D", Park, Kim, Lu, Cho, CVPR
  2019): for the N(N-1) ordered pairs i != j of a batch, psi_ij = |x_i - x_j| / mu over
  L2-normalised embeddings, mu the batch's mean pairwise distance; the loss is the
  Huber (smooth L1, delta 1) difference of the student's and the teacher's psi, averaged.
  Each model's distances are compared with its own, so the embeddings may differ in
  size; dividing by mu makes the term blind to a uniform scale, which matters for dlib:
  its descriptors sit in a narrow cone (unrelated faces at cosine 0.85 +- 0.03, the same
  person at 0.94, measured on CelebA), so matching raw cosines would pull the student into
  that cone against ArcFace, while matching the ratios only asks it to keep the same
  faces relatively close. Zero when the student's batch is the teacher's up to rotation
  and scale.
- Adversarial terms over discriminator scores d (raw, no sigmoid): ``lsgan`` (Mao et al.,
  ICCV 2017, the least-squares loss Chung et al. 2020 use) -- discriminator
  (d_real - 1)^2 + d_fake^2, generator (d_fake - 1)^2; ``bce`` (Goodfellow et al. 2014,
  non-saturating generator) -- discriminator -log sigma(d_real) - log(1 - sigma(d_fake)),
  generator -log sigma(d_fake). All batch means.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F


def kd_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, temperature: float) -> torch.Tensor:
    """T^2 * KL(softmax(teacher/T) || softmax(student/T)), batch mean, in float32; 0 when the logits agree."""
    t = float(temperature)
    log_student = F.log_softmax(student_logits.float() / t, dim=1)
    log_teacher = F.log_softmax(teacher_logits.float() / t, dim=1)
    return t * t * F.kl_div(log_student, log_teacher, reduction="batchmean", log_target=True)


def embedding_loss(student: torch.Tensor, teacher: torch.Tensor, kind: str) -> torch.Tensor:
    """``cosine`` (1 - cos) or ``l2`` (squared distance) between the normalised embeddings, batch mean."""
    s, t = F.normalize(student.float(), dim=1), F.normalize(teacher.float(), dim=1)
    if kind == "cosine":
        return (1.0 - (s * t).sum(dim=1)).mean()
    if kind == "l2":
        return (s - t).pow(2).sum(dim=1).mean()
    raise ValueError(f"unknown embedding loss {kind!r}")


def relational_loss(student: torch.Tensor, teacher: torch.Tensor) -> torch.Tensor:
    """RKD-D: Huber gap of the mean-normalised pairwise distances of the two batches (any widths), float32."""
    if student.shape[0] < 2:
        raise ValueError("relational loss needs at least two embeddings per batch")

    def psi(x: torch.Tensor) -> torch.Tensor:
        unit = F.normalize(x.float(), dim=1)
        off_diagonal = ~torch.eye(unit.shape[0], dtype=torch.bool, device=unit.device)
        # |a - b| of unit vectors from their dot product (cdist's gradient is NaN at zero distance)
        distances = (2.0 - 2.0 * unit @ unit.T)[off_diagonal].clamp_min(1e-12).sqrt()
        return distances / distances.mean()

    return F.smooth_l1_loss(psi(student), psi(teacher), beta=1.0)


def discriminator_loss(real_scores: torch.Tensor, fake_scores: torch.Tensor, kind: str) -> torch.Tensor:
    """The discriminator's loss: teacher maps are real (target 1), student maps fake (target 0)."""
    real, fake = real_scores.float(), fake_scores.float()
    if kind == "lsgan":
        return (real - 1.0).pow(2).mean() + fake.pow(2).mean()
    if kind == "bce":
        return (F.binary_cross_entropy_with_logits(real, torch.ones_like(real))
                + F.binary_cross_entropy_with_logits(fake, torch.zeros_like(fake)))  # fmt: skip
    raise ValueError(f"unknown adversarial loss {kind!r}")


def generator_loss(fake_scores: torch.Tensor, kind: str) -> torch.Tensor:
    """The student's adversarial loss: its maps should be scored real (target 1)."""
    fake = fake_scores.float()
    if kind == "lsgan":
        return (fake - 1.0).pow(2).mean()
    if kind == "bce":
        return F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    raise ValueError(f"unknown adversarial loss {kind!r}")
