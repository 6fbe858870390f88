"""``facebench pairs``: LFW-style verification pairs (identity-disjoint folds) from identity folders."""

from __future__ import annotations

from pathlib import Path

import typer

from facebench.cli.app import command, console


@command("pairs", out_files=("out",))
def pairs(
    data: Path = typer.Option(..., "--data", help="Identity folders: DATA/<identity>/<image>."),
    out: Path = typer.Option(..., "--out", help="pairs.txt to write (LFW format)."),
    folds: int = typer.Option(10, min=1, help="Identity-disjoint folds (LFW View 2: 10)."),
    per_fold: int = typer.Option(300, min=1, help="Matched pairs per fold, and as many mismatched."),
    seed: int = typer.Option(0, min=0, help="Seed: the same data and seed give the same file."),
) -> None:
    """Write LFW-format pairs.txt: per fold, PER_FOLD matched then PER_FOLD mismatched pairs."""
    from facebench.data.pairgen import generate_pairs, identity_numbers
    from facebench.data.pairs import write_lfw_pairs

    generated = generate_pairs(identity_numbers(data), folds=folds, per_fold=per_fold, seed=seed, source=str(data))
    write_lfw_pairs(out, [(fold.matched, fold.mismatched) for fold in generated])
    sizes = [len(fold.identities) for fold in generated]
    console.print(
        f"wrote {out}: {folds} folds x ({per_fold} matched + {per_fold} mismatched) = {2 * folds * per_fold} pairs, "
        f"{min(sizes)}-{max(sizes)} identities per fold (disjoint), seed {seed}; "
        f"verify with images root {data}"
    )
