"""Pairs files: LFW pairs.txt (real and synthetic), pairs CSV, the LFW writer, error messages."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from data_fixtures import make_tree

from facebench.data import read_pairs
from facebench.data.pairs import format_lfw_pairs, lfw_numbering, write_lfw_pairs
from facebench.errors import FacebenchError

SHARED_DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data"


def test_real_lfw_pairs() -> None:
    path = SHARED_DATA / "lfw" / "pairs.txt"
    if not path.is_file():
        pytest.skip("../shared/data/lfw/pairs.txt is not present")
    pairs = read_pairs(path)
    assert len(pairs) == 6000 and int(pairs.issame.sum()) == 3000
    assert np.bincount(pairs.folds).tolist() == [600] * 10
    for fold in range(10):  # each fold: 300 matched, then 300 mismatched
        assert pairs.issame[pairs.folds == fold].tolist() == [True] * 300 + [False] * 300
    assert len(pairs.images) == 7701  # the README's count of images pairs.txt references
    first = Path(pairs.images[pairs.left[0]]), Path(pairs.images[pairs.right[0]])
    assert (first[0].name, first[1].name) == ("Abel_Pacheco_0001.jpg", "Abel_Pacheco_0004.jpg")
    assert pairs.lines[0] == 2 and pairs.lines[-1] == 6001


@pytest.fixture
def lfw_tree(tmp_path: Path) -> Path:
    make_tree(tmp_path / "imgs", {"Ann_Lee": 3, "Bo": 2, "Cy_Do": 1}, lfw_names=True)
    (tmp_path / "imgs" / "Bo" / "Bo_0002.jpg").rename(tmp_path / "imgs" / "Bo" / "Bo_0005.jpg")
    return tmp_path / "imgs"


def test_synthetic_lfw_with_numbers_from_file_names(lfw_tree: Path) -> None:
    text = "2\t1\nAnn_Lee\t1\t3\nAnn_Lee\t2\tBo\t5\nBo\t1\t5\nBo\t5\tCy_Do\t1\n"
    (lfw_tree / "pairs.txt").write_text(text)
    pairs = read_pairs(lfw_tree / "pairs.txt")
    assert pairs.name == "pairs" and pairs.issame.tolist() == [True, False, True, False]
    assert pairs.folds.tolist() == [0, 0, 1, 1] and pairs.lines.tolist() == [2, 3, 4, 5]
    names = [Path(p).relative_to(lfw_tree).as_posix() for p in pairs.images]
    assert names == ["Ann_Lee/Ann_Lee_0001.jpg", "Ann_Lee/Ann_Lee_0003.jpg", "Ann_Lee/Ann_Lee_0002.jpg",
                     "Bo/Bo_0005.jpg", "Bo/Bo_0001.jpg", "Cy_Do/Cy_Do_0001.jpg"]  # each image once
    assert pairs.left.tolist() == [0, 2, 4, 3] and pairs.right.tolist() == [1, 3, 3, 5]


def test_images_root_option_and_single_number_header(lfw_tree: Path, tmp_path: Path) -> None:
    (tmp_path / "view1.txt").write_text("1\nAnn_Lee 1 2\nBo 1 Cy_Do 1\n")
    pairs = read_pairs(tmp_path / "view1.txt", images_root=lfw_tree)
    assert pairs.folds.tolist() == [0, 0] and pairs.issame.tolist() == [True, False]


@pytest.mark.parametrize("line", ["Ann_Lee\t1", "Ann_Lee 1 x", "Ann_Lee 1 2 3 4 5", "Ann_Lee 0 2", "A 1 B -1"])
def test_malformed_line_names_file_line_and_forms(lfw_tree: Path, line: str) -> None:
    (lfw_tree / "pairs.txt").write_text(f"1 1\nAnn_Lee 1 2\n{line}\n")
    with pytest.raises(FacebenchError) as caught:
        read_pairs(lfw_tree / "pairs.txt")
    message = str(caught.value)
    assert message.startswith(f"{lfw_tree / 'pairs.txt'}:3: ")
    assert "expected 'name i j' (matched) or 'name1 i name2 j' (mismatched)" in message and "\n" not in message


def test_missing_image_names_file_and_line(lfw_tree: Path) -> None:
    (lfw_tree / "pairs.txt").write_text("1 1\nAnn_Lee 1 2\nAnn_Lee 1 Bo 2\n")
    with pytest.raises(FacebenchError, match=rf"pairs\.txt:3: image {lfw_tree / 'Bo' / 'Bo_0002.jpg'} not found"):
        read_pairs(lfw_tree / "pairs.txt")
    (lfw_tree / "pairs.txt").write_text("1 1\nNobody 1 2\nAnn_Lee 1 Bo 1\n")
    with pytest.raises(FacebenchError, match=r"pairs\.txt:2: image .*Nobody_0001\.jpg not found"):
        read_pairs(lfw_tree / "pairs.txt")


def test_header_and_count_errors(lfw_tree: Path) -> None:
    (lfw_tree / "pairs.txt").write_text("ten 300\n")
    with pytest.raises(FacebenchError, match=r"pairs\.txt:1: header 'ten 300' is not 'folds n'"):
        read_pairs(lfw_tree / "pairs.txt")
    (lfw_tree / "pairs.txt").write_text("2 1\nAnn_Lee 1 2\nAnn_Lee 1 Bo 1\n")
    with pytest.raises(FacebenchError, match="header says 2 folds x 2 pairs = 4 pairs, but the file has 2"):
        read_pairs(lfw_tree / "pairs.txt")
    (lfw_tree / "pairs.txt").write_text("\n\n")
    with pytest.raises(FacebenchError, match="empty pairs file"):
        read_pairs(lfw_tree / "pairs.txt")
    with pytest.raises(FacebenchError, match="pairs file not found"):
        read_pairs(lfw_tree / "nope.txt")


def test_numbering_rule() -> None:
    assert lfw_numbering("Bo", ["Bo_0005.jpg", "Bo_0001.jpg"]) == {1: "Bo_0001.jpg", 5: "Bo_0005.jpg"}
    # not LFW-named (one file breaks the pattern): 1-based position in sorted order
    assert lfw_numbering("Bo", ["b.jpg", "Bo_0005.jpg", "a.png"]) == {1: "Bo_0005.jpg", 2: "a.png", 3: "b.jpg"}
    assert lfw_numbering("7227", ["000123.jpg", "000042.jpg"]) == {1: "000042.jpg", 2: "000123.jpg"}


def test_writer_exact_text_and_round_trip(lfw_tree: Path) -> None:
    folds = [([("Ann_Lee", 1, 2)], [("Ann_Lee", 3, "Bo", 5)]), ([("Bo", 1, 5)], [("Bo", 1, "Cy_Do", 1)])]
    assert format_lfw_pairs(folds) == "2\t1\nAnn_Lee\t1\t2\nAnn_Lee\t3\tBo\t5\nBo\t1\t5\nBo\t1\tCy_Do\t1\n"
    write_lfw_pairs(lfw_tree / "out.txt", folds)
    pairs = read_pairs(lfw_tree / "out.txt")
    assert pairs.issame.tolist() == [True, False, True, False] and pairs.folds.tolist() == [0, 0, 1, 1]
    with pytest.raises(ValueError):
        format_lfw_pairs([([("A", 1, 2)], [])])


def test_csv_with_header_folds_and_roots(tmp_path: Path) -> None:
    make_tree(tmp_path / "faces", {"a": 2, "b": 1})
    (tmp_path / "faces" / "pairs.csv").write_text(
        "path_a,path_b,issame,fold\na/img001.jpg,a/img002.jpg,1,3\na/img001.jpg,b/img001.jpg,false,7\n"
    )
    pairs = read_pairs(tmp_path / "faces" / "pairs.csv")
    assert pairs.issame.tolist() == [True, False] and pairs.folds.tolist() == [0, 1]
    assert pairs.lines.tolist() == [2, 3] and len(pairs.images) == 3
    (tmp_path / "plain.csv").write_text("a/img001.jpg, b/img001.jpg ,yes\n")
    pairs = read_pairs(tmp_path / "plain.csv", images_root=tmp_path / "faces")
    assert pairs.folds is None and pairs.issame.tolist() == [True]
    assert pairs.images == [str(tmp_path / "faces" / "a" / "img001.jpg"), str(tmp_path / "faces" / "b" / "img001.jpg")]


@pytest.mark.parametrize(
    ("row", "message"),
    [
        ("a/img001.jpg,a/img002.jpg,maybe", r"bad\.csv:2: .* expected 'path_a,path_b,issame\[,fold\]'"),
        ("a/img001.jpg,a/img002.jpg", r"bad\.csv:2: .* expected"),
        ("a/img001.jpg,a/img002.jpg,1,x", r"bad\.csv:2: .* expected"),
        ("a/img001.jpg,a/img002.jpg,1,2", r"bad\.csv:2: some rows have a fold column and some do not"),
        ("a/img001.jpg,a/nope.jpg,1", r"bad\.csv:2: image .*nope\.jpg not found"),
    ],
)
def test_csv_errors(tmp_path: Path, row: str, message: str) -> None:
    make_tree(tmp_path, {"a": 2})
    (tmp_path / "bad.csv").write_text(f"a/img001.jpg,a/img002.jpg,0\n{row}\n")
    with pytest.raises(FacebenchError, match=message):
        read_pairs(tmp_path / "bad.csv")


def test_unknown_format(tmp_path: Path) -> None:
    with pytest.raises(FacebenchError, match="not one of: auto, lfw, csv, bin"):
        read_pairs(tmp_path / "x.txt", fmt="xml")
