"""Make LFW-style verification pairs (View 2 protocol) from identity folders.

Rule, deterministic for a seed (numpy's default_rng):

1. Identities are split into ``folds`` identity-disjoint folds: in order of falling
   matched-pair capacity C(n, 2) (ties in a seeded random order), each goes to the fold
   with the least capacity so far (then fewest images, then lowest index); identities
   with one image go to the fold with the fewest images.
2. Per fold, ``per_fold`` matched pairs are spread over the fold's identities as evenly
   as their capacities allow (water filling: each gives min(C(n, 2), t) pairs, the
   last few pairs going to random identities), each a distinct random image pair.
3. Per fold, ``per_fold`` mismatched pairs: two distinct identities of the fold chosen
   uniformly, one random image of each, no pair twice.

Images are named by the numbers pairs.txt uses (facebench.data.pairs.lfw_numbering),
so the result is written with write_lfw_pairs and read back with read_pairs.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from facebench.data.folders import scan_identity_folders
from facebench.data.pairs import Matched, Mismatched, lfw_numbering
from facebench.errors import FacebenchError

_ENUMERATE_LIMIT = 20_000  # below this many candidate pairs, sample from the full list


@dataclass
class GeneratedFold:
    """One fold: its identities and its pairs."""

    identities: list[str]
    matched: list[Matched]
    mismatched: list[Mismatched]


def identity_numbers(root: str | Path) -> dict[str, list[int]]:
    """identity -> sorted image numbers (as pairs.txt names them) for ``root/<identity>/<image>``."""
    folders = scan_identity_folders(root)
    names: dict[str, list[str]] = {identity: [] for identity in folders.identities}
    for path, label in zip(folders.files, folders.labels, strict=True):
        names[folders.identities[label]].append(path.name)
    for identity in names:
        if len(identity.split()) != 1:
            raise FacebenchError(f"{Path(root) / identity}: identity names in pairs.txt cannot hold whitespace; "
                                 "rename the folder")
    return {identity: sorted(lfw_numbering(identity, files)) for identity, files in names.items()}


def _matched_capacity(count: int) -> int:
    return count * (count - 1) // 2


def _mismatched_capacity(counts: list[int]) -> int:
    total = sum(counts)
    return (total * total - sum(c * c for c in counts)) // 2


def split_folds(counts: dict[str, int], folds: int, rng: np.random.Generator) -> list[list[str]]:
    """Identity-disjoint folds balanced by matched-pair capacity (rule 1 of the module docstring)."""
    names = [list(counts)[i] for i in rng.permutation(len(counts))]
    names.sort(key=lambda name: -_matched_capacity(counts[name]))  # stable: ties stay shuffled
    capacity = [0] * folds
    images = [0] * folds
    members: list[list[str]] = [[] for _ in range(folds)]
    for name in names:
        cap = _matched_capacity(counts[name])
        key = (lambda f: (capacity[f], images[f], f)) if cap else (lambda f: (images[f], f))
        target = min(range(folds), key=key)
        capacity[target] += cap
        images[target] += counts[name]
        members[target].append(name)
    return members


def fold_capacity(counts: dict[str, int], members: list[str]) -> tuple[int, int]:
    """(matched, mismatched) pairs a fold with these identities can supply at most."""
    sizes = [counts[name] for name in members]
    return sum(_matched_capacity(c) for c in sizes), _mismatched_capacity(sizes)


def max_per_fold(counts: dict[str, int], folds: int, seed: int = 0) -> int:
    """The largest --per-fold the data can supply with this many folds (by this module's split)."""
    members = split_folds(counts, folds, np.random.default_rng(seed))
    return min(min(fold_capacity(counts, m)) for m in members)


def _quotas(capacities: list[int], total: int, rng: np.random.Generator) -> list[int]:
    """Water filling: min(cap, level) each, the remainder one each to random identities above it."""
    level = 0
    while level < max(capacities, default=0) and sum(min(c, level + 1) for c in capacities) <= total:
        level += 1
    quotas = [min(c, level) for c in capacities]
    remainder = total - sum(quotas)
    above = [i for i, c in enumerate(capacities) if c > level]
    for i in rng.choice(len(above), size=remainder, replace=False) if remainder else []:
        quotas[above[i]] += 1
    return quotas


def _distinct_pairs(count: int, wanted: int, rng: np.random.Generator) -> list[tuple[int, int]]:
    """``wanted`` distinct index pairs (i < j) out of range(count)."""
    capacity = _matched_capacity(count)
    if capacity <= _ENUMERATE_LIMIT or wanted * 2 > capacity:
        every = list(itertools.combinations(range(count), 2))
        return [every[k] for k in sorted(rng.choice(len(every), size=wanted, replace=False))]
    chosen: set[tuple[int, int]] = set()
    while len(chosen) < wanted:
        i, j = sorted(rng.choice(count, size=2, replace=False).tolist())
        chosen.add((i, j))
    return sorted(chosen)


def _matched(numbers: dict[str, list[int]], members: list[str], wanted: int,
             rng: np.random.Generator) -> list[Matched]:
    multi = [name for name in members if len(numbers[name]) > 1]
    quotas = _quotas([_matched_capacity(len(numbers[name])) for name in multi], wanted, rng)
    pairs: list[Matched] = []
    for name, quota in zip(multi, quotas, strict=True):
        ids = numbers[name]
        pairs.extend((name, ids[i], ids[j]) for i, j in _distinct_pairs(len(ids), quota, rng))
    return sorted(pairs)


def _mismatched(numbers: dict[str, list[int]], members: list[str], wanted: int,
                rng: np.random.Generator) -> list[Mismatched]:
    names = sorted(members)
    sizes = [len(numbers[name]) for name in names]
    if _mismatched_capacity(sizes) <= _ENUMERATE_LIMIT or wanted * 2 > _mismatched_capacity(sizes):
        every = [(a, i, b, j) for (a, na), (b, nb) in itertools.combinations(zip(names, sizes, strict=True), 2)
                 for i in range(na) for j in range(nb)]
        picked = [every[k] for k in rng.choice(len(every), size=wanted, replace=False)]
    else:
        chosen: set[tuple[int, int, int, int]] = set()
        while len(chosen) < wanted:
            a, b = sorted(rng.choice(len(names), size=2, replace=False).tolist())
            chosen.add((a, int(rng.integers(sizes[a])), b, int(rng.integers(sizes[b]))))
        picked = [(names[a], i, names[b], j) for a, i, b, j in chosen]
    return sorted((a, numbers[a][i], b, numbers[b][j]) for a, i, b, j in picked)


def generate_pairs(
    numbers: dict[str, list[int]], *, folds: int = 10, per_fold: int = 300, seed: int = 0, source: str = "data"
) -> list[GeneratedFold]:
    """LFW View-2 style folds of ``per_fold`` matched + ``per_fold`` mismatched pairs each.

    ``numbers``: identity -> image numbers (see identity_numbers). Asking for more than
    the data holds -> FacebenchError saying how many pairs it can supply.
    """
    if folds < 1 or per_fold < 1:
        raise FacebenchError(f"--folds {folds} --per-fold {per_fold}: both must be at least 1")
    counts = {name: len(ids) for name, ids in numbers.items()}
    rng = np.random.default_rng(seed)
    split = split_folds(counts, folds, rng)
    capacities = [fold_capacity(counts, members) for members in split]
    matched_supply, mismatched_supply = (min(kind) for kind in zip(*capacities, strict=True))
    supply = min(matched_supply, mismatched_supply)
    if supply < per_fold:
        multi = sum(1 for c in counts.values() if c > 1)
        alternatives = [k for k in range(folds - 1, 0, -1) if max_per_fold(counts, k, seed) >= per_fold]
        options = [f"--per-fold {supply} or less"] if supply else []
        if alternatives:
            options.append(f"--folds {alternatives[0]} for {per_fold} per fold")
        elif not supply and (one_fold := max_per_fold(counts, 1, seed)):
            options.append(f"--folds 1 --per-fold {one_fold}")
        advice = "use " + ", or ".join(options) if options else "add identities with 2 or more images"
        raise FacebenchError(
            f"{source}: {len(counts)} identities ({multi} with 2+ images, {sum(counts.values())} images) in "
            f"{folds} identity-disjoint folds can supply at most {matched_supply} matched and "
            f"{mismatched_supply} mismatched pairs per fold, not {per_fold}; {advice}"
        )
    return [
        GeneratedFold(sorted(members), _matched(numbers, members, per_fold, rng),
                      _mismatched(numbers, members, per_fold, rng))
        for members in split
    ]
