"""Embedding extraction: order, flip TTA, one forward row per image, clear errors."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
import torch
from torch import nn

from facebench.errors import FacebenchError
from facebench.eval.embed import embed_images
from facebench.input_spec import to_model_input


class TinyEmbedder(nn.Module):
    """A fixed random projection of the pixels that counts the rows it sees."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.fc = nn.Linear(3 * 112 * 112, 8)
        self.rows_seen = 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.rows_seen += x.shape[0]
        return self.fc(x.flatten(1))


def write_faces(folder: Path, count: int, size: int = 112) -> list[str]:
    rng = np.random.default_rng(0)
    paths = []
    for i in range(count):
        path = folder / f"face_{i}.png"
        cv2.imwrite(str(path), rng.integers(0, 256, (size, size, 3), dtype=np.uint8))
        paths.append(str(path))
    return paths


def expected_embedding(model: TinyEmbedder, path: str, flip: bool) -> np.ndarray:
    rgb = cv2.cvtColor(cv2.imread(path), cv2.COLOR_BGR2RGB)
    with torch.no_grad():
        x = to_model_input(rgb)[None]
        out = model.fc(x.flatten(1)) + (model.fc(x.flip(3).flatten(1)) if flip else 0)
    return torch.nn.functional.normalize(out, dim=1)[0].numpy()


@pytest.mark.parametrize("flip", [True, False])
def test_embeddings_in_order_with_and_without_flip(tmp_path: Path, flip: bool) -> None:
    paths = write_faces(tmp_path, 7)
    model = TinyEmbedder()
    emb = embed_images(model, paths, align="none", batch_size=3, flip=flip, progress=False)
    assert emb.shape == (7, 8) and emb.dtype == np.float32
    assert model.rows_seen == 7 * (2 if flip else 1)  # each image through the model once (twice with flip)
    for i, path in enumerate(paths):
        np.testing.assert_allclose(emb[i], expected_embedding(model, path, flip), atol=1e-5)
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-6)


def test_encoded_bytes_and_worker_decoding(tmp_path: Path) -> None:
    paths = write_faces(tmp_path, 4)
    data = [Path(p).read_bytes() for p in paths]
    model = TinyEmbedder()
    from_paths = embed_images(model, paths, align="none", progress=False)
    from_bytes = embed_images(model, data, align="none", num_workers=1, batch_size=2, progress=False)
    np.testing.assert_allclose(from_bytes, from_paths, atol=1e-6)


@pytest.mark.parametrize("workers", [0, 1])
def test_bad_image_is_named(tmp_path: Path, workers: int) -> None:
    paths = write_faces(tmp_path, 3)
    Path(paths[1]).write_bytes(b"garbage")
    with pytest.raises(FacebenchError, match=r"face_1\.png: corrupt"):
        embed_images(TinyEmbedder(), paths, align="none", num_workers=workers, progress=False)
    (tmp_path / "big").mkdir()
    big = write_faces(tmp_path / "big", 1, size=150)
    with pytest.raises(FacebenchError, match=r"face_0\.png: image is 150x150, not 112x112"):
        embed_images(TinyEmbedder(), big, align="none", progress=False)
