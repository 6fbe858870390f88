"""Identity-folder sets for the all-pairs protocol: labels, order and the refusals."""

from pathlib import Path

import numpy as np
import pytest

from facebench.data.folder_set import load_folder_set
from facebench.errors import FacebenchError


def _tree(root: Path, sizes: dict[str, int]) -> Path:
    for identity, n in sizes.items():
        (root / identity).mkdir(parents=True)
        for k in range(n):
            (root / identity / f"{identity}_{k:04d}.jpg").write_bytes(b"x")
    return root


def test_labels_follow_sorted_identities(tmp_path):
    s = load_folder_set("set", _tree(tmp_path / "s", {"bob": 2, "amy": 1, "cy": 3}))
    assert s.identities == ["amy", "bob", "cy"]
    assert s.labels.tolist() == [0, 1, 1, 2, 2, 2]
    assert [Path(p).name for p in s.images][:3] == ["amy_0000.jpg", "bob_0000.jpg", "bob_0001.jpg"]


def test_one_identity_refused(tmp_path):
    with pytest.raises(FacebenchError, match="one identity .*at least two identity folders"):
        load_folder_set("set", _tree(tmp_path / "s", {"bob": 3}))


def test_no_genuine_pairs_refused(tmp_path):
    with pytest.raises(FacebenchError, match="single image, so there are no genuine pairs"):
        load_folder_set("set", _tree(tmp_path / "s", {"bob": 1, "amy": 1}))


def test_non_image_file_named(tmp_path):
    root = _tree(tmp_path / "s", {"bob": 2, "amy": 1})
    (root / "bob" / "notes.txt").write_text("hi")
    (root / "bob" / ".DS_Store").write_text("ignored")
    with pytest.raises(FacebenchError, match=r"bob/notes.txt: not an image"):
        load_folder_set("set", root)


def test_labels_dtype(tmp_path):
    s = load_folder_set("set", _tree(tmp_path / "s", {"a": 2, "b": 2}))
    assert s.labels.dtype == np.int64 and len(s) == 4
