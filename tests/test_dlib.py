"""The external model kind and dlib's face-recognition ResNet (``--model dlib``).

Tests that run dlib skip when the ``facebench[dlib]`` extra is absent; the not-installed
message is tested by hiding the installed modules.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np
import pytest
from typer.testing import CliRunner

from facebench.cli import app
from facebench.errors import FacebenchError
from facebench.external import ExternalSpec, list_external, refuse_external, register_external
from facebench.external.embed_cache import EmbeddingCache, content_digest
from facebench.models import create_model, list_models

LFW_PERSON = ("Aaron_Peirsol", 1, 4)  # two images of one person (a matched pair in pairs.txt)
LFW_OTHER = ("Abdullah_Gul", 1)


def lfw_image(shared_data: Path, name: str, number: int) -> Path:
    path = shared_data / "lfw" / name / f"{name}_{number:04d}.jpg"
    if not path.is_file():
        pytest.skip(f"{path} is not present")
    return path


def hide(monkeypatch: pytest.MonkeyPatch, module: str) -> None:
    """Make ``import module`` fail (and find_spec miss it) as if it were not installed."""
    monkeypatch.setitem(sys.modules, module, None)


# --- the registry's external kind and the on-disk cache: no dlib needed ---


def test_dlib_is_registered_as_external_not_as_zoo() -> None:
    assert "dlib" in list_external() and "dlib" not in list_models()
    with pytest.raises(FacebenchError, match="unknown model 'dlib'"):  # the zoo is a leaf: it knows no external model
        create_model("dlib")
    with pytest.raises(FacebenchError, match="dlib is an external pretrained model .* no zoo architecture"):
        refuse_external("dlib")  # what train and distill --student say
    refuse_external("r18")
    with pytest.raises(ValueError, match="already registered"):
        register_external(ExternalSpec("dlib", "again", 128, dict))
    with pytest.raises(ValueError, match="already registered"):
        register_external(ExternalSpec("r18", "zoo name", 128, dict))


def test_cache_round_trip_is_keyed_by_content_and_model(tmp_path: Path) -> None:
    digest = content_digest(b"image bytes")
    cache = EmbeddingCache("model-a", tmp_path)
    assert cache.load(digest) is None
    vector = np.arange(128, dtype=np.float32)
    cache.save(digest, descriptor=vector, box_source=np.array("detector"))
    entry = cache.load(digest)
    assert entry is not None and np.array_equal(entry["descriptor"], vector) and str(entry["box_source"]) == "detector"
    assert EmbeddingCache("model-b", tmp_path).load(digest) is None  # another model never shares entries
    assert cache.load(content_digest(b"image bytes!")) is None
    cache.path(digest).write_bytes(b"truncated")  # an unreadable entry counts as missing
    assert cache.load(digest) is None
    with pytest.raises(ValueError, match="plain folder name"):
        EmbeddingCache("../escape", tmp_path)


def test_content_digest_is_sha256() -> None:
    import hashlib

    assert content_digest(b"abc") == hashlib.sha256(b"abc").hexdigest()


@pytest.mark.parametrize("module", ["dlib", "face_recognition_models"])
def test_verify_without_the_extra_says_how_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, module: str
) -> None:
    hide(monkeypatch, module)
    for name, number in [("A", 1), ("A", 2), ("B", 1)]:
        (tmp_path / name).mkdir(exist_ok=True)
        cv2.imwrite(str(tmp_path / name / f"{name}_{number:04d}.jpg"), np.zeros((8, 8, 3), np.uint8))
    pairs = tmp_path / "pairs.txt"
    pairs.write_text("1\t1\nA\t1\t2\nA\t1\tB\t1\n")
    result = CliRunner().invoke(app, ["verify", "--model", "dlib", "--pairs", str(pairs), "--out", str(tmp_path / "o")])
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output
    assert f"({module} is not installed)" in result.output
    assert "pip install 'facebench[dlib]'" in result.output
    assert not (tmp_path / "o").exists()


def test_profile_without_the_extra_says_how_to_install(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "dlib")
    result = CliRunner().invoke(app, ["profile", "--models", "mbf,dlib", "--iters", "1", "--out", str(tmp_path)])
    assert result.exit_code == 2, result.output
    assert "pip install 'facebench[dlib]'" in result.output and "Traceback" not in result.output
    assert not (tmp_path / "profile.csv").exists()


def test_distill_from_dlib_without_the_extra_says_how_to_install(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    hide(monkeypatch, "dlib")
    (tmp_path / "faces" / "a").mkdir(parents=True)
    result = CliRunner().invoke(app, ["distill", "--teacher", "dlib", "--student", "mbf", "--method", "emb",
                                      "--data", str(tmp_path / "faces"), "--out", str(tmp_path / "run")])
    assert result.exit_code == 2, result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1 and "the dlib model needs the optional dlib extra (dlib is not installed)" in lines[0]
    assert "pip install 'facebench[dlib]'" in lines[0] and not (tmp_path / "run").exists()


# --- dlib itself ---


@pytest.fixture(scope="module")
def dlib_face(tmp_path_factory: pytest.TempPathFactory) -> object:
    pytest.importorskip("dlib")
    from facebench.external.dlib_face import DlibFace

    try:
        return DlibFace(cache_root=tmp_path_factory.mktemp("cache"))
    except FacebenchError as exc:  # dlib present but face_recognition_models absent
        pytest.skip(str(exc))


def test_chip_matches_dlibs_own_full_image_descriptor(dlib_face: object, shared_data: Path) -> None:
    """Our chip + network equals dlib's one-call descriptor from the image and the shape (independent path)."""
    rgb = cv2.cvtColor(cv2.imread(str(lfw_image(shared_data, *LFW_PERSON[:2]))), cv2.COLOR_BGR2RGB)
    box, source = dlib_face.find_face(rgb)
    assert source == "detector"
    chip = dlib_face.chip(rgb, box)
    assert chip.shape == (150, 150, 3) and chip.dtype == np.uint8
    rect = dlib_face._dlib.rectangle(*(round(v) for v in box))
    shape = dlib_face.shape_predictor(rgb, rect)
    reference = np.asarray(dlib_face.net.compute_face_descriptor(rgb, shape, 0, 0.25), dtype=np.float32)
    np.testing.assert_allclose(dlib_face.descriptor(chip), reference, atol=1e-5)


def test_same_person_is_closer_than_another_person(dlib_face: object, shared_data: Path) -> None:
    name, first, second = LFW_PERSON
    images = [str(lfw_image(shared_data, name, first)), str(lfw_image(shared_data, name, second)),
              str(lfw_image(shared_data, *LFW_OTHER))]  # fmt: skip
    emb = dlib_face.embed_images(images, flip=False, progress=False)
    assert emb.shape == (3, 128) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    same, different = np.sum((emb[0] - emb[1]) ** 2), np.sum((emb[0] - emb[2]) ** 2)
    assert same < 0.18 < different  # dlib's own threshold: raw distance 0.6 ~ squared L2 0.18 at norm 1.4


def test_flip_sums_chip_and_mirror_and_cache_skips_the_network(
    dlib_face: object, shared_data: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = lfw_image(shared_data, *LFW_OTHER)
    emb = dlib_face.embed_images([str(path)], flip=True, progress=False)[0]
    rgb = cv2.cvtColor(cv2.imread(str(path)), cv2.COLOR_BGR2RGB)
    chip = dlib_face.chip(rgb)
    expected = dlib_face.descriptor(chip) + dlib_face.descriptor(chip[:, ::-1].copy())
    np.testing.assert_allclose(emb, expected / np.linalg.norm(expected), atol=1e-5)
    # same bytes under another name: read back from the cache, the network is not run
    copy = tmp_path / "renamed.jpg"
    copy.write_bytes(path.read_bytes())
    monkeypatch.setattr(dlib_face, "net", None)
    again = dlib_face.embed_images([str(copy), copy.read_bytes()], flip=True, progress=False)
    np.testing.assert_array_equal(again, np.stack([emb, emb]))


def test_no_face_uses_the_centre_box_and_is_counted(dlib_face: object, tmp_path: Path) -> None:
    from facebench.external.dlib_face import NO_FACE_BOX

    blank = np.full((200, 100, 3), 127, np.uint8)
    box, source = dlib_face.find_face(blank)
    assert source == "centre"
    np.testing.assert_allclose(box, np.array(NO_FACE_BOX) * [100, 200, 100, 200])
    _, encoded = cv2.imencode(".png", blank)
    before = dlib_face.no_face
    emb = dlib_face.embed_images([encoded.tobytes()] * 2, flip=False, progress=False)
    assert dlib_face.no_face == before + 2 and np.isfinite(emb).all()
    assert dlib_face.settings()["no_face"] == before + 2


def test_weak_candidate_when_the_detector_misses(dlib_face: object, shared_data: Path) -> None:
    """Billy_Andrade_0001 (LFW): no face at HOG's default threshold, one weak candidate, taken and counted."""
    from facebench.external.dlib_face import WEAK_THRESHOLD

    rgb = cv2.cvtColor(cv2.imread(str(lfw_image(shared_data, "Billy_Andrade", 1))), cv2.COLOR_BGR2RGB)
    rects, scores, _ = dlib_face.detector.run(rgb, 1, WEAK_THRESHOLD)
    assert len(rects) >= 1 and max(scores) < 0 and not dlib_face.detector(rgb, 1)
    best = rects[int(np.argmax(scores))]
    box, source = dlib_face.find_face(rgb)
    assert source == "weak" and box == (best.left(), best.top(), best.right(), best.bottom())
    before = dlib_face.weak_face
    dlib_face.embed_images([str(lfw_image(shared_data, "Billy_Andrade", 1))], flip=False, progress=False)
    assert dlib_face.weak_face == before + 1


def test_flip_sums_the_raw_descriptors_of_the_chip_and_its_mirror(dlib_face: object, shared_data: Path) -> None:
    path = str(lfw_image(shared_data, *LFW_OTHER))
    raw_plain, raw_mirror = dlib_face._descriptors([path], (False, True), False, "raw")
    plain = dlib_face.embed_images([path], flip=False, progress=False)
    np.testing.assert_allclose(plain[0], raw_plain[0] / np.linalg.norm(raw_plain[0]), atol=1e-6)
    both = dlib_face.embed_images([path], flip=True, progress=False)  # flip TTA sums raw descriptors, as insightface
    summed = raw_plain[0] + raw_mirror[0]
    np.testing.assert_allclose(both[0], summed / np.linalg.norm(summed), atol=1e-6)
    mirror = raw_mirror[0] / np.linalg.norm(raw_mirror[0])
    assert 0.8 < float(plain[0] @ mirror) < 1.0  # a face and its mirror image: close, not identical


def test_worker_processes_give_the_serial_descriptors_and_counts(dlib_face: object, shared_data: Path,
                                                                  tmp_path: Path) -> None:
    from facebench.external.dlib_face import MIN_PER_PROCESS, DlibFace

    people = sorted(p for p in (shared_data / "lfw").iterdir() if p.is_dir())[:40]
    paths = [str(p) for person in people for p in sorted(person.glob("*.jpg"))][: 2 * MIN_PER_PROCESS - 1]
    paths += [str(lfw_image(shared_data, "Billy_Andrade", 1))]  # needs the weak candidate
    assert len(paths) == 2 * MIN_PER_PROCESS  # just enough for two processes
    serial = DlibFace(cache_root=tmp_path / "serial", processes=1)
    pooled = DlibFace(cache_root=tmp_path / "pooled", processes=2)
    expected = serial.embed_images(paths, flip=True, progress=False)
    np.testing.assert_array_equal(pooled.embed_images(paths, flip=True, progress=False), expected)
    assert (pooled.weak_face, pooled.no_face) == (serial.weak_face, serial.no_face) and pooled.weak_face >= 1
    assert len(list((tmp_path / "pooled").rglob("*.npz"))) == 2 * len(paths)  # the workers filled the cache
    np.testing.assert_array_equal(pooled.embed_images(paths, flip=True, progress=False), expected)  # read back


def test_bad_image_is_one_clear_error(dlib_face: object, tmp_path: Path) -> None:
    with pytest.raises(FacebenchError, match="image not found"):
        dlib_face.embed_images([str(tmp_path / "missing.jpg")], progress=False)
    (tmp_path / "bad.jpg").write_bytes(b"not a jpeg")
    with pytest.raises(FacebenchError, match="bad.jpg: corrupt"):
        dlib_face.embed_images([str(tmp_path / "bad.jpg")], progress=False)


def test_verify_cli_on_lfw_pairs(dlib_face: object, shared_data: Path, tmp_path: Path,
                                 monkeypatch: pytest.MonkeyPatch) -> None:  # fmt: skip
    monkeypatch.setenv("FACEBENCH_CACHE", str(tmp_path / "cache"))
    name, first, second = LFW_PERSON
    other, number = LFW_OTHER
    for image in [(name, first), (name, second), (other, number), (other, 6)]:
        lfw_image(shared_data, *image)
    pairs = tmp_path / "pairs.txt"  # 2 folds of 1 matched + 1 mismatched pair
    pairs.write_text(f"2\t1\n{name}\t{first}\t{second}\n{name}\t{first}\t{other}\t{number}\n"
                     f"{other}\t{number}\t6\n{other}\t6\t{name}\t{second}\n")  # fmt: skip
    result = CliRunner().invoke(app, ["verify", "--model", "dlib", "--pairs", str(pairs), "--no-flip",
                                      "--images-root", str(shared_data / "lfw"), "--out", str(tmp_path / "out")])  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "out" / "verify.json").read_text())["rows"]
    assert row["model"].startswith("dlib (pretrained, dlib ") and row["untrained"] is False
    assert (row["accuracy"], row["threads"], row["batch_size"], row["no_face"], row["weak_face"]) == (1.0, 1, 1, 0, 0)
    assert row["align"].startswith("dlib: HOG detector (upsample 1)") and row["device"].startswith("cpu")
    assert len(list((tmp_path / "cache" / "embeddings").glob("dlib-*-plain/*/*.npz"))) == 4


def test_profile_row_has_na_counts(dlib_face: object, tmp_path: Path) -> None:
    from facebench.external.dlib_face import RECOGNITION_FILE, model_files

    result = CliRunner().invoke(app, ["profile", "--models", "dlib", "--iters", "3", "--warmup", "1",
                                      "--out", str(tmp_path)])  # fmt: skip
    assert result.exit_code == 0, result.output
    (row,) = json.loads((tmp_path / "profile.json").read_text())["rows"]
    assert (row["params_m"], row["gmacs"], row["gflops"]) == (None, None, None)
    assert row["size_mb"] == model_files()["recognition"].stat().st_size / 1e6 and RECOGNITION_FILE
    assert (row["threads"], row["dtype"], row["batch"]) == (1, "fp32", 1)
    assert 0 < row["latency_ms_p50"] <= row["latency_ms_p95"] and row["throughput_ips"] > 0
    table_row = next(line for line in (tmp_path / "profile.md").read_text().splitlines() if line.startswith("| dlib"))
    cells = [cell.strip() for cell in table_row.strip("|").split("|")]
    assert (cells[0], cells[1], cells[7], cells[10], cells[11]) == ("dlib", "dlib (its library)", "n/a", "n/a",
                                                                   "n/a")  # runtime, params, GMACs, GFLOPs
    assert "n/a" in result.output
    bad = CliRunner().invoke(app, ["profile", "--models", "dlib", "--precision", "bf16", "--out", str(tmp_path / "x")])
    assert bad.exit_code == 2 and "runs in its own precision" in bad.output
