"""Identity-folder datasets and load_face: labels, filters, the non-112 rule, bad files."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from data_fixtures import make_tree, random_rgb, write_image

from facebench.data import load_face
from facebench.data.align import center_crop
from facebench.data.folders import IdentityFolderDataset, scan_identity_folders
from facebench.data.images import read_image
from facebench.errors import FacebenchError
from facebench.input_spec import to_model_input


def test_labels_from_sorted_names_and_filters(tmp_path: Path) -> None:
    make_tree(tmp_path, {"zed": 3, "amy": 1, "bob": 5})
    folders = scan_identity_folders(tmp_path)
    assert folders.identities == ["amy", "bob", "zed"]
    assert folders.labels == [0] + [1] * 5 + [2] * 3
    filtered = scan_identity_folders(tmp_path, min_images=2, max_images=4)
    assert filtered.identities == ["bob", "zed"] and filtered.labels == [0] * 4 + [1] * 3
    assert [p.name for p in filtered.files[:4]] == ["img001.jpg", "img002.jpg", "img003.jpg", "img004.jpg"]
    with pytest.raises(FacebenchError, match="no identity has at least 6 images"):
        scan_identity_folders(tmp_path, min_images=6)
    with pytest.raises(FacebenchError, match="need 1 <= min_images <= max_images"):
        scan_identity_folders(tmp_path, min_images=3, max_images=2)


def test_dataset_items_are_normalised_faces(tmp_path: Path) -> None:
    written = make_tree(tmp_path, {"a": 2, "b": 1})
    dataset = IdentityFolderDataset(tmp_path)
    assert len(dataset) == 3 and dataset.num_classes == 2
    tensor, label = dataset[2]
    expected = to_model_input(read_image(tmp_path / "b" / "img001.jpg"))
    assert label == 1 and tensor.dtype == torch.float32 and torch.equal(tensor, expected)
    assert float(tensor.min()) >= -1 and float(tensor.max()) <= 1
    assert len(written) == 3


def test_non_112_images_follow_the_align_option(tmp_path: Path) -> None:
    big = random_rgb((250, 200), seed=5)
    write_image(tmp_path / "p" / "big.png", big)  # PNG: lossless, so the crop is exact
    face = load_face(str(tmp_path / "p" / "big.png"))
    np.testing.assert_array_equal(face, center_crop(big))
    dataset = IdentityFolderDataset(tmp_path, align="center")
    assert torch.equal(dataset[0][0], to_model_input(center_crop(big)))
    with pytest.raises(FacebenchError, match=r"big\.png: image is 200x250, not 112x112"):
        IdentityFolderDataset(tmp_path, align="none")[0]
    with pytest.raises(FacebenchError, match="align 'wobble' is not one of: none, center, mtcnn, yunet, retinaface, haar"):
        IdentityFolderDataset(tmp_path, align="wobble")


def test_empty_identity_folder_is_named(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 2})
    (tmp_path / "empty").mkdir()
    (tmp_path / "empty" / "notes.txt").write_text("not an image")
    with pytest.raises(FacebenchError, match=rf"{tmp_path / 'empty'}: identity folder holds no images"):
        scan_identity_folders(tmp_path)


def test_missing_root(tmp_path: Path) -> None:
    with pytest.raises(FacebenchError, match="not a folder"):
        scan_identity_folders(tmp_path / "nope")
    with pytest.raises(FacebenchError, match="no identity folders inside"):
        scan_identity_folders(tmp_path)


def test_corrupt_image_is_named_or_skipped_and_counted(tmp_path: Path) -> None:
    make_tree(tmp_path, {"a": 2, "b": 2})
    bad = tmp_path / "a" / "img002.jpg"
    bad.write_bytes(bad.read_bytes()[:200])  # truncated JPEG
    dataset = IdentityFolderDataset(tmp_path)
    with pytest.raises(FacebenchError, match=f"^{bad}: corrupt, truncated or not an image"):
        dataset[1]
    skipping = IdentityFolderDataset(tmp_path, skip_bad=True)
    assert skipping.skipped == [bad] and len(skipping) == 3
    assert [skipping[i][1] for i in range(3)] == [0, 1, 1]
