"""`facebench verify` end to end on tiny pairs sets written in tmp_path."""

from __future__ import annotations

import json
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from typer.testing import CliRunner

from facebench.checkpoint import save_checkpoint
from facebench.cli import app
from facebench.data.binset import write_bin
from facebench.eval.embed import embed_images
from facebench.eval.verification import evaluate_distances
from facebench.models import create_model
from facebench.modelspec import resolve_model

NAMES = ["Ann_A", "Bob_B", "Cid_C", "Dee_D"]
OUTPUTS = ["roc.png", "scores.csv", "scores.png", "verify.csv", "verify.json", "verify.md"]


def write_lfw(root: Path, header: str = "10\t1") -> Path:
    """4 identities x 3 images (125x125 JPEG, centre-cropped to 112) and a 10-fold pairs.txt of 20 pairs."""
    rng = np.random.default_rng(0)
    for name in NAMES:
        (root / name).mkdir(parents=True)
        base = rng.integers(0, 256, (125, 125, 3))
        for k in (1, 2, 3):
            image = np.clip(base + rng.normal(0, 40, base.shape), 0, 255).astype(np.uint8)
            cv2.imwrite(str(root / name / f"{name}_{k:04d}.jpg"), image)
    lines = [header]
    for fold in range(10):
        a, b = NAMES[fold % 4], NAMES[(fold + 1) % 4]
        lines += [f"{a}\t{1 + fold % 2}\t3", f"{a}\t{1 + fold % 3}\t{b}\t{1 + (fold + 1) % 3}"]
    (root / "pairs.txt").write_text("\n".join(lines) + "\n")
    return root / "pairs.txt"


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["verify", *args])


def test_zoo_model_on_lfw_pairs_writes_every_output(tmp_path: Path) -> None:
    pairs = write_lfw(tmp_path / "lfw")
    result = run("--model", "mbf", "--pairs", str(pairs), "--no-flip", "--device", "cpu", "--batch-size", "5",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == OUTPUTS
    report = json.loads((tmp_path / "out" / "verify.json").read_text())
    (row,) = report["rows"]
    assert row["model"] == "mbf (untrained)" and row["untrained"] is True
    assert (row["set"], row["n_pairs"], row["n_folds"], row["folds_from"]) == ("pairs", 20, 10, "file")
    assert (row["batch_size"], row["flip"], row["align"]) == (5, False, "center")
    assert row["device"].startswith("cpu") and row["wall_s"] > 0
    assert row["tar_at_far_1e-01"] is not None and row["tar_at_far_1e-02"] is None  # 10 mismatched pairs
    assert report["meta"]["untrained"] is True
    assert "mbf (untrained)" in (tmp_path / "out" / "verify.md").read_text()

    # scores.csv holds the cosine of independently computed embeddings, and re-scoring it reproduces the row
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert list(scores.columns) == ["model", "set", "pair", "score", "issame", "fold"]
    assert (scores["model"] == "mbf (untrained)").all()
    np.testing.assert_array_equal(scores["fold"], np.repeat(np.arange(10), 2))
    np.testing.assert_array_equal(scores["issame"], np.tile([1, 0], 10))
    from facebench.data import read_pairs

    pair_set = read_pairs(pairs)
    emb = embed_images(resolve_model("mbf").model, pair_set.images, flip=False, progress=False)
    cosine = np.sum(emb[pair_set.left] * emb[pair_set.right], axis=1)
    np.testing.assert_allclose(scores["score"], cosine, atol=1e-5)
    rescored = evaluate_distances(2 - 2 * scores["score"].to_numpy(), scores["issame"].to_numpy() == 1,
                                  scores["fold"].to_numpy())
    assert row["accuracy"] == pytest.approx(rescored.accuracy, abs=1e-9)
    assert row["roc_auc"] == pytest.approx(rescored.roc_auc, abs=1e-9)


def test_checkpoint_run_folder_and_several_sets(tmp_path: Path) -> None:
    pairs = write_lfw(tmp_path / "lfw")
    images = sorted((tmp_path / "lfw").glob("*/*.jpg"))
    same = [(a, b) for a in range(12) for b in range(a + 1, 12) if a // 3 == b // 3][:11]  # 3 images per identity
    other = [(a, (a + 3) % 12) for a in range(11)]
    # matched and mismatched alternate, so each contiguous fold (3, 3, 2, ..., 2 pairs) holds both kinds
    csv_lines = [f"{images[a]},{images[b]},{s}" for m, x in zip(same, other) for (a, b), s in ((m, 1), (x, 0))]
    (tmp_path / "more.csv").write_text("\n".join(csv_lines) + "\n")
    write_bin(tmp_path / "set.bin", [p.read_bytes() for p in images[:10]] * 4, [True, False] * 10)  # 2 per fold
    torch.manual_seed(3)
    model = create_model("mbf", embedding_size=64)
    save_checkpoint(tmp_path / "run" / "checkpoint.pt", model, model_name="mbf", embedding_size=64, config={})
    result = run("--model", str(tmp_path / "run"), "--pairs", str(pairs), "--pairs", str(tmp_path / "more.csv"),
                 "--pairs", str(tmp_path / "set.bin"), "--device", "cpu", "--out", str(tmp_path / "out"))
    assert result.exit_code == 0, result.output
    rows = json.loads((tmp_path / "out" / "verify.json").read_text())["rows"]
    assert [(r["set"], r["n_pairs"], r["folds_from"]) for r in rows] == [
        ("pairs", 20, "file"), ("more", 22, "kfold"), ("set", 20, "kfold")
    ]
    assert all(r["model"] == f"mbf ({tmp_path / 'run' / 'checkpoint.pt'})" and not r["untrained"] for r in rows)
    assert all(r["flip"] is True for r in rows)
    scores = pd.read_csv(tmp_path / "out" / "scores.csv")
    assert scores.groupby("set", sort=False).size().to_dict() == {"pairs": 20, "more": 22, "set": 20}


def one_line_error(result: object, *fragments: str) -> None:
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert all(fragment in result.output for fragment in fragments), result.output


def test_bad_inputs_exit_2_and_write_nothing(tmp_path: Path) -> None:
    pairs = write_lfw(tmp_path / "lfw")
    out = tmp_path / "out"
    (tmp_path / "lfw" / "Bob_B" / "Bob_B_0003.jpg").unlink()
    one_line_error(run("--model", "mbf", "--pairs", str(pairs), "--out", str(out)), "pairs.txt:", "Bob_B_0003.jpg",
                   "not found")
    (tmp_path / "empty.csv").write_text("")
    one_line_error(run("--model", "mbf", "--pairs", str(tmp_path / "empty.csv"), "--out", str(out)), "empty.csv")
    images = sorted((tmp_path / "lfw").glob("*/*.jpg"))
    rows = [f"{images[i % 5]},{images[(i + 1) % 5]},{i % 2},{0 if i < 12 else 1}" for i in range(20)]
    (tmp_path / "folds.csv").write_text("\n".join(rows) + "\n")
    one_line_error(run("--model", "mbf", "--pairs", str(tmp_path / "folds.csv"), "--out", str(out)),
                   "folds.csv", "unequal size (12, 8")
    write_lfw(tmp_path / "ok")
    (tmp_path / "broken.pt").write_bytes(b"\x00not a checkpoint")
    one_line_error(run("--model", str(tmp_path / "broken.pt"), "--pairs", str(tmp_path / "ok" / "pairs.txt"),
                       "--out", str(out)), "broken.pt", "unreadable checkpoint")
    one_line_error(run("--model", "mbf", "--pairs", str(tmp_path / "ok" / "pairs.txt"), "--align", "sideways",
                       "--out", str(out)), "sideways")
    assert not out.exists()
