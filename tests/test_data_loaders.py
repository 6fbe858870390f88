"""Loaders: dataset picked from the path, batches, flip augmentation, one-line worker errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import make_tree

from facebench.data.folders import IdentityFolderDataset
from facebench.data.loaders import default_workers, make_loader, open_dataset
from facebench.data.recordio import RecordDataset, pack_folders
from facebench.data.transforms import SHIFT_PIXELS, FaceTransform, train_transform
from facebench.errors import FacebenchError
from facebench.input_spec import ARCFACE


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    make_tree(tmp_path / "faces", {"a": 3, "b": 3, "c": 2})
    return tmp_path / "faces"


def test_open_dataset_picks_the_reader(tree: Path, tmp_path: Path) -> None:
    assert isinstance(open_dataset(tree, train=True), IdentityFolderDataset)
    pack_folders(tree, tmp_path / "rec")
    for path in (tmp_path / "rec", tmp_path / "rec" / "train.rec"):
        dataset = open_dataset(path, train=False)
        assert isinstance(dataset, RecordDataset) and len(dataset) == 8 and dataset.num_classes == 3
    with pytest.raises(FacebenchError, match="not a dataset"):
        open_dataset(tmp_path / "nothing.txt", train=True)


def test_same_samples_from_folders_and_their_pack(tree: Path, tmp_path: Path) -> None:
    pack_folders(tree, tmp_path / "rec")
    folders, packed = open_dataset(tree, train=False), open_dataset(tmp_path / "rec", train=False)
    for i in range(8):
        (x, label), (y, packed_label) = folders[i], packed[i]
        assert label == packed_label and torch.equal(x, y)


def test_train_flips_some_faces_and_eval_none(tree: Path) -> None:
    plain = open_dataset(tree, train=False)
    augmented = open_dataset(tree, train=True)
    torch.manual_seed(0)
    flipped = 0
    for _ in range(5):
        for i in range(len(plain)):
            original = plain[i][0]
            out = augmented[i][0]
            assert torch.equal(out, original) or torch.equal(out, original.flip(-1))
            flipped += not torch.equal(out, original)
    assert 10 <= flipped <= 30  # 40 draws at p = 0.5
    assert repr(FaceTransform(flip=True)) == ("FaceTransform(flip=True, shift=0, spec='112x112 RGB, mean 127.5, "
                                              "std 127.5')")


def test_flip_shift_moves_the_face_by_the_drawn_offset_and_none_leaves_it() -> None:
    """flip-shift: the face moved by (dy, dx) drawn from torch's RNG in [-8, 8], edges repeated; checked against
    np.roll in the interior and the repeated edge rows outside it."""
    face = torch.randint(0, 256, (112, 112, 3), generator=torch.Generator().manual_seed(1)).numpy().astype("uint8")
    spec = ARCFACE
    shift = train_transform(spec, "flip-shift")
    seen = set()
    for seed in range(40):
        torch.manual_seed(seed)
        out = shift(face)
        torch.manual_seed(seed)
        flipped = torch.rand(()) < 0.5
        dy, dx = (int(v) for v in torch.randint(-SHIFT_PIXELS, SHIFT_PIXELS + 1, (2,)))
        source = face[:, ::-1] if flipped else face
        expected = np.roll(source, (dy, dx), axis=(0, 1))
        rows, cols = slice(max(dy, 0), 112 + min(dy, 0)), slice(max(dx, 0), 112 + min(dx, 0))
        assert torch.equal(out[:, rows, cols], spec.to_tensor(np.ascontiguousarray(expected))[:, rows, cols])
        if dy > 0:  # the rows the shift uncovered repeat the first row
            assert torch.equal(out[:, 0, cols], out[:, dy, cols])
        seen.add((dy, dx))
    assert len(seen) > 20 and max(abs(v) for pair in seen for v in pair) <= SHIFT_PIXELS
    assert torch.equal(train_transform(spec, "none")(face), spec.to_tensor(face))
    with pytest.raises(FacebenchError, match="--augment 'jitter' is not one of: flip, flip-shift, none"):
        train_transform(spec, "jitter")


def test_loader_batches_in_process_and_with_a_worker(tree: Path) -> None:
    dataset = open_dataset(tree, train=True)
    for workers in (0, 1):
        loader = make_loader(dataset, batch_size=3, train=True, workers=workers, seed=1)
        batches = list(loader)
        assert len(batches) == 2 and not loader.pin_memory  # 8 images, last partial batch dropped
        assert all(x.shape == (3, 3, 112, 112) and y.dtype == torch.int64 for x, y in batches)
    evaluation = make_loader(open_dataset(tree, train=False), batch_size=3, train=False, workers=0)
    labels = torch.cat([y for _, y in evaluation]).tolist()
    assert labels == [0, 0, 0, 1, 1, 1, 2, 2]  # all samples, in order
    assert 0 <= default_workers() <= 8


def test_worker_error_reaches_the_user_as_one_line(tree: Path) -> None:
    bad = tree / "b" / "img001.jpg"
    bad.write_bytes(b"not a jpeg")
    loader = make_loader(open_dataset(tree, train=False), batch_size=4, train=False, workers=1)
    with pytest.raises(FacebenchError) as caught:
        list(loader)
    assert str(caught.value) == (f"{bad}: corrupt, truncated or not an image; replace or delete it "
                                 "(or pass --skip-bad to skip bad images)")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_pinned_memory_for_cuda(tree: Path) -> None:
    loader = make_loader(open_dataset(tree, train=True), batch_size=4, train=True, workers=0, device="cuda")
    assert loader.pin_memory and next(iter(loader))[0].is_pinned()
