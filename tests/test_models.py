"""Every registered model: shapes, gradients, registry behaviour."""

from __future__ import annotations

import pytest
import torch

from facebench.errors import FacebenchError
from facebench.input_spec import random_input, to_model_input
from facebench.models import create_model, list_models, register_model

EXPECTED_MODELS = {"r18", "r34", "r50", "r101", "ir18", "ir34", "ir50", "ir100", "mobilenet", "mbf"}


def test_zoo_holds_the_required_models() -> None:
    assert EXPECTED_MODELS <= set(list_models())
    assert list_models("ir*") == ["ir18", "ir34", "ir50", "ir100"]


@pytest.mark.parametrize("name", list_models())
def test_forward_shapes(name: str) -> None:
    model = create_model(name).eval()
    x = random_input(2)
    with torch.inference_mode():
        features = model.forward_features(x)
        embedding = model(x)
    assert features.shape == (2, model.feature_channels, 7, 7)
    assert embedding.shape == (2, 128 if name == "mfn128" else 512)  # mfn128: the pretrained weights' size
    assert torch.isfinite(embedding).all()


@pytest.mark.parametrize("name", ["r18", "ir18", "mobilenet", "mbf"])
def test_backward_reaches_every_trainable_parameter(name: str) -> None:
    model = create_model(name, embedding_size=64).train()
    model(random_input(2)).square().mean().backward()
    trainable = [(n, p) for n, p in model.named_parameters() if p.requires_grad]
    missing = [n for n, p in trainable if p.grad is None or not torch.isfinite(p.grad).all()]
    assert not missing


def test_embedding_size_is_configurable() -> None:
    with torch.inference_mode():
        assert create_model("mbf", embedding_size=128).eval()(random_input(1)).shape == (1, 128)


def test_unknown_model_lists_valid_names() -> None:
    with pytest.raises(FacebenchError, match="unknown model 'r19'.*r18.*mobilenet"):
        create_model("r19")


def test_duplicate_registration_is_refused() -> None:
    with pytest.raises(ValueError, match="already registered"):
        register_model("r18", family="x", description="x")(lambda **kw: None)


def test_input_normalisation_maps_0_and_255_to_minus_one_and_one() -> None:
    import numpy as np

    image = np.zeros((112, 112, 3), dtype=np.uint8)
    image[0, 0] = (255, 128, 0)
    tensor = to_model_input(image)
    assert tensor.shape == (3, 112, 112)
    assert tensor[:, 0, 0].tolist() == pytest.approx([1.0, (128 / 255 - 0.5) / 0.5, -1.0], abs=1e-6)
    assert to_model_input(np.stack([image, image])).shape == (2, 3, 112, 112)
