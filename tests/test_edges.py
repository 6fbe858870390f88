"""The edges a new user's try-out found, each fixed in one place: a file a third-party library cannot parse, a full
disk, an export of random weights, a byte-order mark, and SIGTERM. Each ends in one line, never a traceback."""

from __future__ import annotations

import errno
import json
import signal
import subprocess
import sys
from collections import namedtuple
from pathlib import Path

import pytest
import torch
from test_train_resume import loss_column, tensors
from train_helpers import TINY, make_faces, tiny_spec, write_pairs_csv
from typer.testing import CliRunner

from facebench import fileio
from facebench.checkpoint import load_checkpoint, save_checkpoint
from facebench.cli import app
from facebench.data.images import read_image
from facebench.data.pairs import read_pairs
from facebench.data.recordio import read_index, read_property
from facebench.errors import FacebenchError
from facebench.fileio import foreign_file, read_json, write_json_atomic
from facebench.models import registry
from facebench.runlock import LOCK_NAME
from facebench.train.logs import CsvLog
from facebench.train.config import TrainConfig
from facebench.train.run import resume_config, train

HELPER = Path(__file__).resolve().parent / "train_helpers.py"
TRAIN = ["--model", TINY, "--embedding-size", "16", "--epochs", "2", "--batch-size", "8", "--workers", "0",
         "--threads", "1", "--log-every", "1", "--checkpoint-every", "3", "--warmup-epochs", "0.5", "--seed", "7"]
Usage = namedtuple("Usage", "total used free")


def one_error_line(result: object, code: int = 2) -> str:
    output = result.output  # type: ignore[attr-defined]
    assert result.exit_code == code, output  # type: ignore[attr-defined]
    lines = output.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in output, output
    return lines[0]


def no_temp_files(folder: Path) -> bool:
    return not [p for p in folder.rglob(".*") if fileio.TEMP_NAME.fullmatch(p.name)]


# ---------------------------------------------------------------- files a third-party library cannot parse
@pytest.mark.parametrize(("name", "expected"), [("broken.onnx", "an ONNX model"), ("broken.xml", "an OpenVINO IR")])
def test_a_deployed_file_that_does_not_parse_is_one_line(tmp_path: Path, name: str, expected: str) -> None:
    pytest.importorskip("onnxruntime" if name.endswith(".onnx") else "openvino")
    broken = tmp_path / name
    broken.write_text("this is a text file, not a model\n")
    result = CliRunner().invoke(app, ["profile", "--models", str(broken), "--device", "cpu", "--iters", "1",
                                      "--warmup", "0", "--threads", "1", "--out", str(tmp_path / "p")])
    line = one_error_line(result)
    assert f"{broken}: cannot be read as {expected}" in line


def test_verify_of_a_text_file_named_onnx_is_one_line(tmp_path: Path) -> None:
    pytest.importorskip("onnxruntime")
    make_faces(tmp_path / "faces", identities=4, per_identity=8)
    pairs = write_pairs_csv(tmp_path / "faces")
    broken = tmp_path / "broken.onnx"
    broken.write_text("not a model\n")
    result = CliRunner().invoke(app, ["verify", "--model", str(broken), "--pairs", str(pairs), "--device", "cpu",
                                      "--no-flip", "--out", str(tmp_path / "v")])
    assert f"{broken}: cannot be read as an ONNX model" in one_error_line(result)
    assert not (tmp_path / "v").exists()


def test_an_empty_image_file_is_named_not_an_opencv_assertion(tmp_path: Path) -> None:
    empty = tmp_path / "face.png"
    empty.write_bytes(b"")
    with pytest.raises(FacebenchError, match=r"face\.png: corrupt, truncated or not an image"):
        read_image(empty)


def test_weights_that_torch_cannot_load_are_one_line(tmp_path: Path) -> None:
    broken = tmp_path / "weights.pt"
    broken.write_bytes(b"PK\x03\x04 not really a zip archive")
    result = CliRunner().invoke(app, ["profile", "--models", "mbf", "--weights", str(broken), "--device", "cpu",
                                      "--iters", "1", "--warmup", "0", "--out", str(tmp_path / "p")])
    assert str(broken) in one_error_line(result)


def test_foreign_file_turns_any_library_error_into_one_line(tmp_path: Path) -> None:
    with pytest.raises(FacebenchError, match=r"^m\.dat: cannot be read as dlib's model \(bad magic\)"):
        with foreign_file("m.dat", "dlib's model"):
            raise RuntimeError("bad magic\nmore detail the user does not need")
    with pytest.raises(FacebenchError, match="already one line"):  # ours pass through unchanged
        with foreign_file("m.dat", "x"):
            raise FacebenchError("already one line")


# ---------------------------------------------------------------- a full disk
def full_disk(monkeypatch: pytest.MonkeyPatch, free: int = 0) -> None:
    monkeypatch.setattr(fileio.shutil, "disk_usage", lambda path: Usage(10**9, 10**9 - free, free))


def test_a_json_write_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    def no_space(self: Path, *args: object, **kwargs: object) -> None:
        Path.write_bytes(self, b"x" * 1000)
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(Path, "write_text", no_space)
    full_disk(monkeypatch)
    with pytest.raises(FacebenchError, match=r"^no space left on device while writing .*verify\.json; at least "
                                             r"0\.001 MB needed \(0\.0 MB free\)"):
        write_json_atomic(tmp_path / "verify.json", {"a": 1})
    assert list(tmp_path.iterdir()) == []


def test_a_checkpoint_onto_a_full_disk_names_its_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def failing_save(obj: object, path: Path) -> None:  # what torch.save raises when the disk fills
        Path(path).write_bytes(b"x" * 64)
        raise RuntimeError("[enforce fail at inline_container.cc:603] . unexpected pos 64 vs 0")

    full_disk(monkeypatch)
    monkeypatch.setattr(torch, "save", failing_save)
    model = torch.nn.Linear(1000, 1000)  # 4.0 MB of weights
    with pytest.raises(FacebenchError) as caught:
        save_checkpoint(tmp_path / "checkpoint.pt", model, model_name="m", embedding_size=1000, config={})
    assert str(caught.value).startswith(f"no space left on device while writing {tmp_path / 'checkpoint.pt'}; "
                                        "4.0 MB needed (0.0 MB free)")
    assert list(tmp_path.iterdir()) == []


def test_a_torch_write_failure_with_space_left_is_not_called_a_full_disk(tmp_path: Path,
                                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    full_disk(monkeypatch, free=10**9)
    monkeypatch.setattr(torch, "save", lambda obj, path: (_ for _ in ()).throw(RuntimeError("unexpected pos 1")))
    with pytest.raises(RuntimeError, match="unexpected pos"):
        save_checkpoint(tmp_path / "c.pt", torch.nn.Linear(2, 2), model_name="m", embedding_size=2, config={})


def test_a_csv_append_onto_a_full_disk_is_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    log = CsvLog(tmp_path / "metrics.csv")
    log.write({"step": 1, "loss": 2.0})
    real_open = Path.open

    def full(self: Path, mode: str = "r", *args: object, **kwargs: object) -> object:
        if "a" in mode:
            raise OSError(errno.ENOSPC, "No space left on device")
        return real_open(self, mode, *args, **kwargs)

    monkeypatch.setattr(Path, "open", full)
    with pytest.raises(FacebenchError, match="no space left on device while writing .*metrics.csv"):
        log.write({"step": 2, "loss": 1.0})


def test_export_onto_a_full_disk_is_one_line_and_leaves_nothing(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("onnxruntime")

    def no_space(*args: object, **kwargs: object) -> None:
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(torch.onnx, "export", no_space)
    out = tmp_path / "out" / "m.onnx"
    result = CliRunner().invoke(app, ["export", "--model", "mbf", "--untrained", "--out", str(out)])
    assert f"no space left on device while writing {out}" in one_error_line(result)
    assert list((tmp_path / "out").iterdir()) == []


def test_train_says_before_training_that_the_checkpoints_will_not_fit(tmp_path: Path,
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    data = make_faces(tmp_path / "faces")
    full_disk(monkeypatch, free=1000)
    threads = torch.get_num_threads()
    try:
        result = CliRunner().invoke(app, ["train", *TRAIN, "--data", str(data), "--out", str(tmp_path / "run")])
    finally:
        torch.set_num_threads(threads)
    line = one_error_line(result)
    assert f"no space left on device for the checkpoints of {tmp_path / 'run'}: " in line
    assert "MB needed, 0.001 MB free" in line
    assert not (tmp_path / "run" / "checkpoint.pt").exists() and not (tmp_path / "run" / "metrics.csv").exists()


# ---------------------------------------------------------------- export of random weights
def test_export_of_a_bare_zoo_name_is_refused_without_untrained(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["export", "--model", "mfn128", "--out", str(tmp_path / "m.onnx")])
    line = one_error_line(result)
    assert "--model mfn128: a zoo name without --weights is seeded random weights, not a deployable model" in line
    assert "--untrained" in line and list(tmp_path.iterdir()) == []


# ---------------------------------------------------------------- byte-order marks and CRLF
BOM = "\ufeff"


@pytest.mark.parametrize("newline", ["\n", "\r\n"])
@pytest.mark.parametrize("bom", ["", BOM])
def test_pairs_files_take_a_bom_and_crlf(tmp_path: Path, bom: str, newline: str) -> None:
    make_faces(tmp_path, identities=4, per_identity=8)
    csv_text = write_pairs_csv(tmp_path).read_text()
    (tmp_path / "win.csv").write_bytes((bom + csv_text.replace("\n", newline)).encode("utf-8"))
    assert len(read_pairs(tmp_path / "win.csv")) == 16
    for k in range(2):  # LFW names: id<k>_0001.jpg under id<k>/
        folder = tmp_path / "lfw" / f"P{k}"
        folder.mkdir(parents=True)
        for n in (1, 2):
            (folder / f"P{k}_{n:04d}.png").write_bytes((tmp_path / f"id{k}" / "000.png").read_bytes())
    lfw = ["2\t1", "P0\t1\t2", "P0\t1\tP1\t1", "P1\t1\t2", "P1\t2\tP0\t2"]
    (tmp_path / "lfw" / "pairs.txt").write_bytes((bom + newline.join(lfw) + newline).encode("utf-8"))
    pairs = read_pairs(tmp_path / "lfw" / "pairs.txt")
    assert len(pairs) == 4 and pairs.issame.tolist() == [True, False, True, False]


def test_index_property_and_json_take_a_bom_and_crlf(tmp_path: Path) -> None:
    (tmp_path / "train.idx").write_bytes(f"{BOM}0\t0\r\n1\t1024\r\n".encode())
    assert read_index(tmp_path / "train.idx") == {0: 0, 1: 1024}
    (tmp_path / "property").write_bytes(f"{BOM}10,112,112\r\n".encode())
    assert read_property(tmp_path / "property") == (10, 112, 112)
    (tmp_path / "baseline.json").write_bytes((BOM + json.dumps({"a": 1}).replace(",", ",\r\n")).encode())
    assert read_json(tmp_path / "baseline.json") == {"a": 1}


# ---------------------------------------------------------------- SIGTERM
@pytest.mark.parametrize(("how", "workers"), [("--term-at-step", "0"), ("--term-group-at-step", "2")],
                         ids=["process", "process-group-with-loader-workers"])
def test_sigterm_ends_a_run_as_ctrl_c_does_and_it_resumes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str,
                                                          workers: str) -> None:
    data = make_faces(tmp_path / "faces")
    run = tmp_path / "run"
    # 32 images, batch 8: 4 steps an epoch, 8 in all; checkpoints at steps 3 and 6; SIGTERM after step 5
    args = [*TRAIN[: TRAIN.index("--workers") + 1], workers, *TRAIN[TRAIN.index("--workers") + 2 :]]
    process = subprocess.run([sys.executable, str(HELPER), how, "5", "train", *args, "--data", str(data),
                              "--out", str(run)], capture_output=True, text=True, timeout=120, check=False,
                             start_new_session=True)  # fmt: skip
    assert process.returncode == 143, process.stderr
    lines = [line for line in process.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and lines[0].startswith("error: terminated (SIGTERM)"), process.stderr
    assert not (run / LOCK_NAME).exists() and no_temp_files(run)
    # the step it was in was finished and checkpointed (the periodic checkpoint was at step 3)
    assert load_checkpoint(run / "checkpoint.pt")["extra"]["training"]["step"] == 5

    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    threads = torch.get_num_threads()
    try:
        train(resume_config(run, {}), resume=True, progress=False)
        if workers == "0":  # ... and the resumed run ends bit-identical to one never stopped
            whole = tmp_path / "whole"
            train(TrainConfig(model=TINY, data=str(data), out=str(whole), embedding_size=16, epochs=2, batch_size=8,
                              workers=0, threads=1, log_every=1, checkpoint_every=3, warmup_epochs=0.5, seed=7),
                  progress=False)  # fmt: skip
    finally:
        torch.set_num_threads(threads)
    got = load_checkpoint(run / "checkpoint.pt")
    assert got["extra"]["training"]["step"] == 8
    if workers == "0":
        want, have = tensors(load_checkpoint(whole / "checkpoint.pt")), tensors(got)
        assert want.keys() == have.keys() and all(torch.equal(want[k], have[k]) for k in want)
        assert loss_column(run / "metrics.csv") == loss_column(whole / "metrics.csv")


def test_the_sigterm_handler_is_only_there_while_a_command_runs() -> None:
    before = signal.getsignal(signal.SIGTERM)
    assert CliRunner().invoke(app, ["models", "--help"]).exit_code == 0
    assert signal.getsignal(signal.SIGTERM) == before


def test_ctrl_c_is_one_line_and_exit_130_and_the_lock_is_released(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    def interrupted(*args: object, **kwargs: object) -> None:
        assert (tmp_path / "rec" / LOCK_NAME).exists()  # interrupted while holding the lock
        raise KeyboardInterrupt

    monkeypatch.setattr("facebench.data.recordio.pack_folders", interrupted)
    make_faces(tmp_path / "faces", identities=2, per_identity=2)
    result = CliRunner().invoke(app, ["pack", "--src", str(tmp_path / "faces"), "--out", str(tmp_path / "rec")])
    line = one_error_line(result, code=130)
    assert line.startswith("error: interrupted (Ctrl-C): stopped;")
    assert not (tmp_path / "rec" / LOCK_NAME).exists()
