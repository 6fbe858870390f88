"""mfn128: the MobileFaceNet layout of the public pretrained weights, and the weights themselves when present."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import torch

from facebench.input_spec import IMAGENET, random_input
from facebench.models import create_model
from facebench.models.mobilefacenet128 import MobileFaceNet128
from facebench.modelspec import model_with_weights

WEIGHTS = Path(__file__).resolve().parents[1] / ".." / "shared" / "models" / "mobilefacenet" / "mobilefacenet.pt"
WEIGHTS_SHA256 = "90a00ba1d8b0b688af3deb731ed53dca582e6106805d1bc3cfdef55f570493f4"  # its README's


def test_layout_matches_the_published_description() -> None:
    model = create_model("mfn128").eval()
    assert isinstance(model, MobileFaceNet128) and model.input_spec == IMAGENET
    assert len(model.features) == 15
    assert sum(block.use_residual for block in model.features) == 12  # the README's 12 residual additions
    assert model.features[5].conv[0][0].weight.shape == (256, 64, 1, 1)  # expand width t x input channels
    assert sum(p.numel() for p in model.parameters()) == 999_936
    x = random_input(2)
    with torch.inference_mode():
        assert model.forward_features(x).shape == (2, 512, 7, 7)
        assert torch.equal(model.head(model.body(x)), model(x))
        assert model(x).shape == (2, 128)


def test_state_dict_names_are_the_published_ones() -> None:
    keys = list(create_model("mfn128").state_dict())
    assert len(keys) == 307
    assert keys[:2] == ["conv1.0.weight", "conv1.1.weight"]
    assert {"dw_conv.depthwise.weight", "gdconv.depthwise.weight", "conv3.bias", "bn.running_var"} <= set(keys)


@pytest.mark.skipif(not WEIGHTS.is_file(), reason="../shared/models is not present")
def test_published_weights_load_strictly() -> None:
    assert hashlib.sha256(WEIGHTS.read_bytes()).hexdigest() == WEIGHTS_SHA256
    state = torch.load(WEIGHTS, map_location="cpu", weights_only=True)
    assert sum(v.numel() for v in state.values() if v.is_floating_point()) == 1_019_648  # README's count
    model = model_with_weights("mfn128", WEIGHTS)
    assert all(torch.equal(model.state_dict()[k], v) for k, v in state.items())
