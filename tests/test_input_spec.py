"""Input specs: per-channel normalisation, channel order, size, conversion between specs, round trip as JSON."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from facebench.input_spec import ARCFACE, IMAGENET, InputSpec, model_input_spec, to_model_input


def test_imagenet_spec_normalises_each_channel_by_its_own_statistics() -> None:
    image = np.zeros((112, 112, 3), dtype=np.uint8)
    image[5, 7] = (255, 128, 0)
    x = IMAGENET.to_tensor(image)
    expected = [(255 - 123.675) / 58.395, (128 - 116.28) / 57.12, (0 - 103.53) / 57.375]
    assert x[:, 5, 7].tolist() == pytest.approx(expected, abs=1e-5)
    # torchvision's ToTensor + Normalize(ImageNet), computed independently
    reference = (torch.tensor([255, 128, 0]) / 255.0 - torch.tensor([0.485, 0.456, 0.406])) / torch.tensor(
        [0.229, 0.224, 0.225])
    assert x[:, 5, 7] == pytest.approx(reference, abs=1e-5)


def test_arcface_spec_is_the_old_fixed_normalisation() -> None:
    image = np.random.default_rng(0).integers(0, 256, (2, 112, 112, 3), dtype=np.uint8)
    old = (image.astype(np.float32) / 255.0 - 0.5) / 0.5
    assert torch.allclose(to_model_input(image), torch.from_numpy(old.transpose(0, 3, 1, 2)), atol=1e-6)


def test_bgr_reverses_the_channels_and_size_resizes() -> None:
    image = np.zeros((112, 112, 3), dtype=np.uint8)
    image[..., 0] = 200  # red
    spec = InputSpec(size=64, mean=(0, 0, 0), std=(1, 1, 1), bgr=True)
    x = spec.to_tensor(image)
    assert x.shape == (3, 64, 64)
    assert float(x[2].mean()) == pytest.approx(200) and float(x[0].abs().max()) == 0


def test_convert_equals_normalising_the_pixels_directly() -> None:
    image = np.random.default_rng(1).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    bgr = InputSpec(mean=(10.0, 20.0, 30.0), std=(50.0, 60.0, 70.0), bgr=True)
    for source, target in ((ARCFACE, IMAGENET), (IMAGENET, ARCFACE), (ARCFACE, bgr), (bgr, IMAGENET)):
        converted = target.convert(source.to_tensor(image), source)
        assert torch.allclose(converted, target.to_tensor(image), atol=1e-4), (source, target)
    x = ARCFACE.to_tensor(image)
    assert ARCFACE.convert(x, ARCFACE) is x


def test_spec_round_trips_through_its_dict_and_refuses_bad_values() -> None:
    spec = InputSpec(96, (1.0, 2.0, 3.0), (4.0, 5.0, 6.0), True)
    assert InputSpec.from_dict(spec.to_dict()) == spec
    assert spec.describe() == "96x96 BGR, mean 1/2/3, std 4/5/6"
    assert ARCFACE.describe() == "112x112 RGB, mean 127.5, std 127.5"
    with pytest.raises(ValueError):
        InputSpec(std=(1.0, 0.0, 1.0))


def test_model_input_spec_defaults_to_arcface() -> None:
    assert model_input_spec(torch.nn.Linear(2, 2)) == ARCFACE
    model = torch.nn.Linear(2, 2)
    model.input_spec = IMAGENET
    assert model_input_spec(model) == IMAGENET


def test_video_embedder_normalises_by_the_models_spec() -> None:
    from facebench.modelspec import seeded_zoo_model
    from facebench.profiling.video_pipeline import BatchEmbedder

    model = seeded_zoo_model("mfn128")
    crops = np.random.default_rng(2).integers(0, 256, (3, 112, 112, 3), dtype=np.uint8)
    with torch.inference_mode():
        expected = model(IMAGENET.to_tensor(crops)).numpy()
    got = BatchEmbedder(model, torch.device("cpu"))(crops)
    assert np.allclose(got, expected, atol=1e-4)
