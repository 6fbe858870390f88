"""Margin heads against an independent float64 formula (theta from arccos), gradients, registry."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from facebench.errors import FacebenchError
from facebench.models.heads import (
    arcface_logits,
    cosface_logits,
    create_head,
    list_heads,
    register_head,
)


def reference_arcface(cosine: np.ndarray, labels: np.ndarray, s: float, m: float) -> np.ndarray:
    """The ArcFace paper's s*cos(theta + m) for theta + m < pi; past pi, insightface's cos(theta) - m*sin(pi - m)."""
    out = cosine.astype(np.float64).copy()
    for row, label in enumerate(labels):
        theta = math.acos(float(cosine[row, label]))
        out[row, label] = math.cos(theta + m) if theta + m < math.pi else cosine[row, label] - m * math.sin(math.pi - m)
    return s * out


def reference_cosface(cosine: np.ndarray, labels: np.ndarray, s: float, m: float) -> np.ndarray:
    out = cosine.astype(np.float64).copy()
    out[np.arange(len(labels)), labels] -= m
    return s * out


def cosines(rows: int = 64, classes: int = 7, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Cosines over [-1, 1] with target values at both ends, both sides of cos(pi - 0.5), and in between."""
    rng = np.random.default_rng(seed)
    cos = rng.uniform(-1, 1, (rows, classes))
    labels = rng.integers(0, classes, rows)
    special = [1.0, -1.0, 0.0, math.cos(math.pi - 0.5) + 1e-6, math.cos(math.pi - 0.5) - 1e-6, -0.95, 0.999999]
    cos[np.arange(len(special)), labels[: len(special)]] = special
    return cos, labels


@pytest.mark.parametrize(("s", "m"), [(64.0, 0.5), (30.0, 0.3), (64.0, 0.7)])
def test_arcface_matches_arccos_formula(s: float, m: float) -> None:
    cos, labels = cosines()
    expected = reference_arcface(cos, labels, s, m)
    got64 = arcface_logits(torch.from_numpy(cos), torch.from_numpy(labels), s, m).numpy()
    np.testing.assert_allclose(got64, expected, rtol=0, atol=1e-6 * s)  # sqrt(1 - c^2) form vs arccos
    got32 = arcface_logits(torch.from_numpy(cos).float(), torch.from_numpy(labels), s, m).numpy()
    np.testing.assert_allclose(got32, expected, rtol=0, atol=1e-2)  # float32 sqrt(1 - c^2) near c = 1
    non_target = np.ones_like(cos, dtype=bool)
    non_target[np.arange(len(labels)), labels] = False
    np.testing.assert_array_equal(got64[non_target], s * cos[non_target])  # other classes: s*cos exactly


def test_arcface_target_logit_is_monotone_in_theta() -> None:
    """Past theta = pi - m, cos(theta + m) would rise again; the fallback keeps the logit falling."""
    theta = torch.linspace(0, math.pi, 2001, dtype=torch.float64)
    labels = torch.zeros(len(theta), dtype=torch.long)
    logits = arcface_logits(torch.cos(theta).unsqueeze(1).repeat(1, 2), labels)[:, 0]
    assert (logits[1:] < logits[:-1]).all()
    assert logits[0].item() == pytest.approx(64 * math.cos(0.5))


@pytest.mark.parametrize(("s", "m"), [(64.0, 0.35), (30.0, 0.2)])
def test_cosface_matches_formula(s: float, m: float) -> None:
    cos, labels = cosines(seed=1)
    got = cosface_logits(torch.from_numpy(cos), torch.from_numpy(labels), s, m).numpy()
    np.testing.assert_allclose(got, reference_cosface(cos, labels, s, m), rtol=0, atol=1e-12)


def test_gradients_finite_at_cosine_plus_minus_one() -> None:
    cos = torch.tensor([[1.0, 0.2], [-1.0, 0.3], [0.5, 1.0]], requires_grad=True)
    labels = torch.tensor([0, 0, 1])
    arcface_logits(cos, labels).sum().backward()
    assert torch.isfinite(cos.grad).all()
    # at an interior point the gradient is the analytic d/dc s*cos(acos(c) + m) = s*(cos m + c sin m / sqrt(1 - c^2))
    c = torch.tensor([[0.3, 0.1]], dtype=torch.float64, requires_grad=True)
    arcface_logits(c, torch.tensor([0]))[0, 0].backward()
    assert c.grad[0, 0].item() == pytest.approx(64 * (math.cos(0.5) + 0.3 * math.sin(0.5) / math.sqrt(1 - 0.09)))


def test_head_normalises_embeddings_and_class_weights() -> None:
    torch.manual_seed(0)
    head = create_head("arcface", 16, 5)
    assert (head.scale, head.margin, head.num_classes) == (64.0, 0.5, 5)
    embedding = torch.randn(6, 16) * 10
    labels = torch.tensor([0, 1, 2, 3, 4, 0])
    e = embedding.double() / embedding.double().norm(dim=1, keepdim=True)
    w = head.fc.weight.detach().double() / head.fc.weight.detach().double().norm(dim=1, keepdim=True)
    cos = (e @ w.T).numpy()
    np.testing.assert_allclose(head(embedding).detach().numpy(), 64 * cos, atol=1e-4)  # no labels: s*cos, no margin
    np.testing.assert_allclose(head(embedding, labels).detach().numpy(),
                               reference_arcface(cos, labels.numpy(), 64, 0.5), atol=1e-3)
    cosface = create_head("cosface", 16, 5, scale=30, margin=0.2)
    assert (cosface.scale, cosface.margin) == (30.0, 0.2)


def test_cosine_stays_float32_under_autocast() -> None:
    head = create_head("cosface", 8, 3)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        logits = head(torch.randn(4, 8).bfloat16(), torch.tensor([0, 1, 2, 0]))
    assert logits.dtype == torch.float32


def test_registry_lists_refuses_and_explains() -> None:
    assert list_heads()[:2] == ["arcface", "cosface"]
    with pytest.raises(FacebenchError, match=r"unknown head 'sphereface'; valid heads: arcface, cosface"):
        create_head("sphereface", 8, 3)
    with pytest.raises(ValueError, match="already registered"):
        register_head("arcface", arcface_logits, scale=1, margin=0, description="dup")
    with pytest.raises(FacebenchError, match="at least 2 classes"):
        create_head("arcface", 8, 1)
