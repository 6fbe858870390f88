"""`facebench verify --folders`: every pair of a tiny identity-folder set, end to end, against brute force."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from facebench.cli import app
from facebench.data.degrade import parse_degradation
from facebench.data.folder_set import load_folder_set
from facebench.eval.embed import embed_images
from facebench.modelspec import resolve_model
from data_fixtures import make_tree

COUNTS = {"amy": 4, "bob": 3, "cy": 1, "dee": 5, "eve": 1, "fay": 2, "gus": 3, "hal": 1}


def run(*args: str) -> object:
    return CliRunner().invoke(app, ["verify", *args])


def brute_force_scores(emb: np.ndarray, probes: np.ndarray, labels: np.ndarray,
                       fmr: float) -> tuple[int, np.ndarray, np.ndarray]:
    """From the full score matrix (pair i < j scored as probe j against clean i): the impostor count an FMR
    allows, the impostor scores (descending) and the genuine scores."""
    scores = emb @ probes.T
    i, j = np.triu_indices(len(labels), k=1)
    s, same = scores[i, j], labels[i] == labels[j]
    impostor = np.sort(s[~same])[::-1]
    allowed = int(np.floor(fmr * impostor.size))
    return allowed, impostor, s[same]


def test_folder_set_rows_match_brute_force(tmp_path: Path) -> None:
    root = tmp_path / "faces"
    make_tree(root, COUNTS)
    out = tmp_path / "out"
    result = run("--model", "mbf", "--folders", f"faces={root}", "--degrade", "jpeg:10+noise:20", "--bootstrap", "40",
                 "--align", "none", "--no-flip", "--device", "cpu", "--batch-size", "7", "--out", str(out))
    assert result.exit_code == 0, result.output
    assert "faces@jpeg:10+noise:20:" in result.output and "bootstrap over identities" in result.output
    assert {"det.png", "verify.json", "verify.csv", "verify.md"} <= {p.name for p in out.iterdir()}
    assert not (out / "scores.csv").exists()  # no pairs set
    report = json.loads((out / "verify.json").read_text())
    rows = report["rows"]
    assert [r["set"] for r in rows] == ["faces", "faces@jpeg:10+noise:20"]
    assert report["meta"]["degradations"]["faces@jpeg:10+noise:20"]["seed"] == 0
    assert "ties at t are never split" in report["meta"]["all_pairs_protocol"]["threshold"].lower()
    sizes = np.array(list(COUNTS.values()))
    n_genuine = int((sizes * (sizes - 1) // 2).sum())
    n_all = sizes.sum() * (sizes.sum() - 1) // 2
    folder = load_folder_set("faces", root)
    model = resolve_model("mbf").model
    emb = embed_images(model, folder.images, align="none", flip=False, batch_size=7, progress=False)
    noisy = embed_images(model, folder.images, align="none", flip=False, batch_size=7, progress=False,
                         degrade=parse_degradation("jpeg:10+noise:20"))
    for row, probes in zip(rows, (emb, noisy), strict=True):
        assert row["protocol"] == "all-pairs" and row["accuracy"] is None
        assert (row["n_genuine"], row["n_impostor"], row["n_images"]) == (n_genuine, n_all - n_genuine, 20)
        assert row["fnmr_fmr_1e-3"] is None and row["threshold_fmr_1e-4"] is None  # 167 impostors: n/a
        allowed, impostor, genuine = brute_force_scores(emb, probes, folder.labels, 1e-2)
        threshold = row["threshold_fmr_1e-2"]
        assert (impostor >= threshold).sum() <= allowed
        lower = impostor[impostor < threshold]  # the next impostor value down would accept too many
        assert lower.size == 0 or (impostor >= lower.max()).sum() > allowed
        assert row["fnmr_fmr_1e-2"] == np.mean(genuine < threshold)
        # 5 identities with 2+ images enrol one each, their 12 other images search; cy, eve, hal are non-mated
        assert (row["n_gallery"], row["n_mated"], row["n_nonmated"]) == (5, 12, 3)
    assert rows[0]["degrade"] is None and rows[1]["degrade"] == "jpeg:10+noise:20"
    assert rows[0]["threshold_fmr_1e-2"] != rows[1]["threshold_fmr_1e-2"]


def test_no_set_is_one_line(tmp_path: Path) -> None:
    result = run("--model", "mbf", "--out", str(tmp_path / "out"))
    assert result.exit_code == 2
    assert "give at least one set to verify" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "out").exists()


def test_single_identity_folder_refused(tmp_path: Path) -> None:
    make_tree(tmp_path / "one", {"amy": 3})
    result = run("--model", "mbf", "--folders", str(tmp_path / "one"), "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "at least two identity folders" in result.output
    assert not (tmp_path / "out" / "verify.json").exists()


def test_unreadable_image_named(tmp_path: Path) -> None:
    make_tree(tmp_path / "s", {"amy": 2, "bob": 2})
    (tmp_path / "s" / "bob" / "img002.jpg").write_bytes(b"not a jpeg")
    result = run("--model", "mbf", "--folders", f"s={tmp_path / 's'}", "--align", "none", "--device", "cpu",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "bob/img002.jpg: corrupt, truncated or not an image" in result.output
    assert not (tmp_path / "out" / "verify.json").exists()


def test_a_model_that_aligns_its_own_faces_cannot_be_degraded(tmp_path: Path) -> None:
    pytest.importorskip("dlib")
    make_tree(tmp_path / "s", {"amy": 2, "bob": 2})
    result = run("--model", "dlib", "--folders", f"s={tmp_path / 's'}", "--degrade", "blur:2",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "aligns its own faces" in result.output and "drop --degrade" in result.output
    assert not (tmp_path / "out" / "verify.json").exists()


def test_pairs_and_folders_of_one_name_refused(tmp_path: Path) -> None:
    make_tree(tmp_path / "s", {"amy": 2, "bob": 2})
    (tmp_path / "p.csv").write_text("left,right,issame\ns/amy/img001.jpg,s/amy/img002.jpg,1\n")
    result = run("--model", "mbf", "--pairs", f"s={tmp_path / 'p.csv'}", "--folders", f"s={tmp_path / 's'}",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "both name a set 's'" in result.output
    result = run("--model", "mbf", "--folders", f"s={tmp_path / 's'}", "--degrade", "pixelate:4",
                 "--out", str(tmp_path / "out"))
    assert result.exit_code == 2 and "--degrade 'pixelate:4'" in result.output
    assert not (tmp_path / "out").exists()
