"""Distillation loss terms against independent NumPy computations, and the modules of adversarial KD."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebench.distill.adversarial import Discriminator, make_transfer
from facebench.distill.losses import (
    discriminator_loss,
    embedding_loss,
    generator_loss,
    kd_loss,
)


def _log_softmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=1, keepdims=True))


@pytest.mark.parametrize("temperature", [1.0, 4.0, 7.5])
def test_kd_loss_equals_numpy_kl(temperature: float) -> None:
    rng = np.random.default_rng(3)
    student, teacher = rng.normal(0, 20, (6, 11)), rng.normal(0, 20, (6, 11))
    log_p_t, log_p_s = _log_softmax(teacher / temperature), _log_softmax(student / temperature)
    expected = temperature**2 * (np.exp(log_p_t) * (log_p_t - log_p_s)).sum(axis=1).mean()
    got = kd_loss(torch.tensor(student), torch.tensor(teacher), temperature)
    assert got.item() == pytest.approx(expected, rel=1e-5)
    assert expected > 0.1


def test_kd_loss_is_zero_with_zero_gradient_when_logits_agree() -> None:
    logits = torch.randn(5, 9) * 30
    student = logits.clone().requires_grad_(True)
    loss = kd_loss(student, logits, 4.0)
    loss.backward()
    assert abs(loss.item()) < 1e-6
    assert student.grad.abs().max().item() < 1e-6


def test_embedding_losses() -> None:
    rng = np.random.default_rng(0)
    s, t = rng.normal(size=(7, 16)), rng.normal(size=(7, 16))
    cos = (s * t).sum(1) / np.linalg.norm(s, axis=1) / np.linalg.norm(t, axis=1)
    cosine = embedding_loss(torch.tensor(s), torch.tensor(t), "cosine").item()
    assert cosine == pytest.approx((1 - cos).mean(), rel=1e-5)
    # unit vectors: |a - b|^2 = 2 - 2 cos exactly; the scale of an embedding does not matter
    l2 = embedding_loss(torch.tensor(s) * 5, torch.tensor(t), "l2").item()
    assert l2 == pytest.approx(2 * cosine, rel=1e-5)
    same = torch.tensor(s)
    for kind in ("cosine", "l2"):
        assert abs(embedding_loss(same, same * 3, kind).item()) < 1e-6


def test_adversarial_losses_match_their_formulas() -> None:
    real, fake = torch.tensor([0.9, 0.2, 1.5]), torch.tensor([0.1, -0.4, 0.8])
    r, f = real.numpy(), fake.numpy()
    assert discriminator_loss(real, fake, "lsgan").item() == pytest.approx(((r - 1) ** 2).mean() + (f**2).mean())
    assert generator_loss(fake, "lsgan").item() == pytest.approx(((f - 1) ** 2).mean())
    sig = lambda x: 1 / (1 + np.exp(-x))
    assert discriminator_loss(real, fake, "bce").item() == pytest.approx(
        -np.log(sig(r)).mean() - np.log(1 - sig(f)).mean(), rel=1e-5)
    assert generator_loss(fake, "bce").item() == pytest.approx(-np.log(sig(f)).mean(), rel=1e-5)


def test_transfer_and_discriminator_shapes() -> None:
    assert isinstance(make_transfer(8, 8), torch.nn.Identity)
    transfer = make_transfer(12, 8)
    maps = transfer(torch.randn(4, 12, 7, 7))
    assert maps.shape == (4, 8, 7, 7)
    scores = Discriminator(8, hidden=16)(maps)
    assert scores.shape == (4,)
