"""Pair generation: identity-disjoint balanced folds (property test), determinism, round trip, errors."""

from __future__ import annotations

from pathlib import Path

import pytest
from data_fixtures import make_tree
from hypothesis import given, settings
from hypothesis import strategies as st

from facebench.data import read_pairs
from facebench.data.pairgen import GeneratedFold, generate_pairs, identity_numbers
from facebench.data.pairs import write_lfw_pairs
from facebench.errors import FacebenchError


def check_folds(numbers: dict[str, list[int]], folds: list[GeneratedFold], per_fold: int) -> None:
    """Everything LFW View 2 promises, checked from the pairs themselves."""
    seen: set[str] = set()
    for fold in folds:
        members = set(fold.identities)
        assert not members & seen  # identity-disjoint across folds
        seen |= members
        assert len(fold.matched) == per_fold and len(fold.mismatched) == per_fold  # balanced
        assert len(set(fold.matched)) == per_fold and len(set(fold.mismatched)) == per_fold  # no repeats
        used = set()
        for name, i, j in fold.matched:
            assert i < j and {i, j} <= set(numbers[name])
            used.add(name)
        for a, i, b, j in fold.mismatched:
            assert a < b and i in numbers[a] and j in numbers[b]
            used |= {a, b}
        assert used <= members  # a fold's pairs use only its own identities


@settings(max_examples=60, deadline=None)
@given(
    sizes=st.lists(st.integers(1, 12), min_size=1, max_size=40),
    folds=st.integers(1, 6),
    per_fold=st.integers(1, 40),
    seed=st.integers(0, 2**32 - 1),
)
def test_folds_disjoint_and_balanced_or_clear_error(sizes: list[int], folds: int, per_fold: int, seed: int) -> None:
    numbers = {f"id{k:02d}": list(range(1, n + 1)) for k, n in enumerate(sizes)}
    try:
        generated = generate_pairs(numbers, folds=folds, per_fold=per_fold, seed=seed)
    except FacebenchError as exc:
        message = str(exc)
        if "--per-fold " in message:  # the figure the error gives is one the data really supplies
            supply = int(message.split("--per-fold ")[1].split()[0])
            assert supply < per_fold or "--folds 1 --per-fold" in message
            fewer = 1 if "--folds 1 --per-fold" in message else folds
            check_folds(numbers, generate_pairs(numbers, folds=fewer, per_fold=supply, seed=seed), supply)
        if "--folds " in message and " for " in message:  # and so is the suggested fold count
            fewer = int(message.split("--folds ")[1].split()[0])
            assert fewer < folds
            check_folds(numbers, generate_pairs(numbers, folds=fewer, per_fold=per_fold, seed=seed), per_fold)
        return
    assert len(generated) == folds
    check_folds(numbers, generated, per_fold)


def test_lfw_numbers_are_used_as_given() -> None:
    numbers = {"A": [2, 7, 9], "B": [4, 5], "C": [1, 3, 6, 8]}
    generated = generate_pairs(numbers, folds=1, per_fold=5, seed=3)
    check_folds(numbers, generated, 5)


def test_deterministic_for_a_seed() -> None:
    numbers = {f"p{k}": list(range(1, 2 + k % 7)) for k in range(60)}
    first = generate_pairs(numbers, folds=5, per_fold=20, seed=11)
    assert generate_pairs(numbers, folds=5, per_fold=20, seed=11) == first
    assert generate_pairs(numbers, folds=5, per_fold=20, seed=12) != first


def test_matched_pairs_spread_over_identities() -> None:
    numbers = {f"p{k}": list(range(1, 11)) for k in range(10)}  # 45 matched pairs each
    (fold,) = generate_pairs(numbers, folds=1, per_fold=30, seed=0)
    per_identity = [sum(1 for name, _, _ in fold.matched if name == p) for p in numbers]
    assert sorted(per_identity) == [3] * 10


def test_error_says_what_the_data_supplies() -> None:
    numbers = {"a": [1, 2, 3], "b": [1, 2], "c": [1, 2], "d": [1]}  # C(3,2)+1+1 = 5 matched pairs in all
    with pytest.raises(FacebenchError) as caught:
        generate_pairs(numbers, folds=2, per_fold=3, seed=0, source="faces")
    message = str(caught.value)
    assert message.startswith("faces: 4 identities (3 with 2+ images, 8 images) in 2 identity-disjoint folds ")
    assert "use --per-fold 2 or less, or --folds 1 for 3 per fold" in message
    with pytest.raises(FacebenchError, match=r"can supply at most 0 matched .*; use --folds 1 --per-fold 5$"):
        generate_pairs(numbers, folds=4, per_fold=6)
    with pytest.raises(FacebenchError, match="; add identities with 2 or more images$"):
        generate_pairs({"a": [1], "b": [1]}, folds=1, per_fold=1)
    with pytest.raises(FacebenchError, match="both must be at least 1"):
        generate_pairs(numbers, folds=0)


def test_round_trip_through_lfw_reader(tmp_path: Path) -> None:
    make_tree(tmp_path / "faces", {f"person{k}": 2 + k % 4 for k in range(12)})
    numbers = identity_numbers(tmp_path / "faces")
    generated = generate_pairs(numbers, folds=3, per_fold=4, seed=0)
    write_lfw_pairs(tmp_path / "pairs.txt", [(f.matched, f.mismatched) for f in generated])
    pairs = read_pairs(tmp_path / "pairs.txt", images_root=tmp_path / "faces")
    assert len(pairs) == 24 and pairs.folds.tolist() == [0] * 8 + [1] * 8 + [2] * 8
    for k, fold in enumerate(generated):
        rows = [(Path(pairs.images[a]), Path(pairs.images[b]))
                for a, b, f in zip(pairs.left, pairs.right, pairs.folds, strict=True) if f == k]
        expected = [(n, i, n, j) for n, i, j in fold.matched] + list(fold.mismatched)
        for (path_a, path_b), (name_a, i, name_b, j) in zip(rows, expected, strict=True):
            # the non-LFW names img001.jpg... are numbered by sorted position
            assert (path_a.parent.name, path_a.name) == (name_a, f"img{i:03d}.jpg")
            assert (path_b.parent.name, path_b.name) == (name_b, f"img{j:03d}.jpg")


def test_identity_names_with_spaces_are_refused(tmp_path: Path) -> None:
    make_tree(tmp_path, {"Ann Lee": 2})
    with pytest.raises(FacebenchError, match="cannot hold whitespace"):
        identity_numbers(tmp_path)
