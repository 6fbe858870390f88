"""The training engine and ``facebench train`` on a toy backbone and toy data made in tmp_path."""

from __future__ import annotations

import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from train_helpers import TINY, make_faces, tiny_spec, write_pairs_csv
from typer.testing import CliRunner

from facebench.checkpoint import load_checkpoint
from facebench.cli import app
from facebench.data import PairSet
from facebench.errors import FacebenchError
from facebench.eval.verify import first_folds, parse_named_pairs
from facebench.models import registry
from facebench.modelspec import resolve_model
from facebench.train import losses
from facebench.train.config import TrainConfig
from facebench.train.logs import CsvLog
from facebench.train.run import resume_config, train
from facebench.train.sampler import ResumableSampler, augmentation_seed
from facebench.train.schedule import LRSchedule


@pytest.fixture(autouse=True)
def tiny_model(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy backbone in the zoo for this test only; torch's thread count restored afterwards."""
    monkeypatch.setitem(registry._REGISTRY, TINY, tiny_spec())
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="module")
def faces(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = make_faces(tmp_path_factory.mktemp("faces"))
    write_pairs_csv(root)
    return root


def config(faces: Path, out: Path, **kw: object) -> TrainConfig:
    base = {"model": TINY, "data": str(faces), "out": str(out), "embedding_size": 16, "epochs": 2, "batch_size": 8,
            "workers": 0, "threads": 1, "log_every": 1, "checkpoint_every": 0, "warmup_epochs": 0}
    return TrainConfig(**{**base, **kw})


def rows(path: Path) -> list[dict[str, str]]:
    with path.open(newline="") as handle:
        return list(csv.DictReader(handle))


def test_loss_falls_on_separable_faces(faces: Path, tmp_path: Path) -> None:
    result = train(config(faces, tmp_path / "run", epochs=8), progress=False)
    assert result.fit.step == 8 * 4  # 32 images / batch 8
    metrics = rows(tmp_path / "run" / "metrics.csv")
    assert list(metrics[0]) == ["step", "epoch", "lr", "loss_arcface", "loss", "samples_per_s"]
    assert [int(r["step"]) for r in metrics] == list(range(1, 33))
    losses_by_epoch = [np.mean([float(r["loss"]) for r in metrics if int(r["epoch"]) == e]) for e in range(8)]
    assert losses_by_epoch[-1] < 0.6 * losses_by_epoch[0], losses_by_epoch
    assert all(float(r["loss"]) == float(r["loss_arcface"]) for r in metrics)


def test_lr_schedule_shapes() -> None:
    cosine = LRSchedule(0.1, total_steps=10, warmup_steps=2)
    assert [cosine.lr(s) for s in (0, 1)] == [0.05, 0.1]
    assert cosine.lr(2) == pytest.approx(0.1) and cosine.lr(6) == pytest.approx(0.05)
    assert cosine.lr(9) == pytest.approx(0.1 * 0.5 * (1 + math.cos(math.pi * 7 / 8)))
    poly = LRSchedule(0.1, total_steps=10, warmup_steps=0, kind="poly", power=2)
    assert [poly.lr(s) for s in (0, 5)] == [pytest.approx(0.1), pytest.approx(0.1 * 0.25)]


def test_sampler_resumes_mid_epoch_and_shards_ranks() -> None:
    data = list(range(50))
    whole = ResumableSampler(data, batch_size=4, rank=0, world_size=1, seed=3)
    whole.set_epoch(2)
    full = list(whole)
    assert len(full) == len(whole) == 50 and sorted(i for i, _ in full) == data
    whole.set_epoch(2, start_batch=5)
    assert list(whole) == full[20:] and len(whole) == 30 and whole.batches_per_epoch == 12
    whole.set_epoch(3)
    assert [i for i, _ in whole] != [i for i, _ in full]  # a new order each epoch
    ranks = [ResumableSampler(data, batch_size=4, rank=r, world_size=2, seed=3) for r in (0, 1)]
    for sampler in ranks:
        sampler.set_epoch(2)
    shards = [list(s) for s in ranks]
    assert not {i for i, _ in shards[0]} & {i for i, _ in shards[1]}
    # a sample's augmentation seed depends on (seed, epoch, index) only, not on the process count
    seeds = dict(full)
    assert all(seeds[i] == s == augmentation_seed(3, 2, i) for shard in shards for i, s in shard)


def test_csv_log_cuts_rows_past_the_resumed_step(tmp_path: Path) -> None:
    log = CsvLog(tmp_path / "m.csv")
    for step in (1, 2, 3, 4):
        log.write({"step": step, "loss": step / 10})
    with (tmp_path / "m.csv").open("a") as handle:
        handle.write("5,0.")  # a row cut off by a kill
    resumed = CsvLog(tmp_path / "m.csv", resume_step=2)
    resumed.write({"step": 3, "loss": 0.25})
    assert (tmp_path / "m.csv").read_text() == "step,loss\n1,0.1\n2,0.2\n3,0.25\n"
    with pytest.raises(ValueError, match="differ from the columns"):
        resumed.write({"step": 4, "other": 1.0})


def test_nan_loss_stops_keeps_last_good_checkpoint_and_exits_2(
    faces: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = losses.margin_loss

    def nan_from_step_6(step):  # the loss turns NaN at 0-based step 6 (the 7th update)
        terms = real(step)
        return {k: v * float("nan") if step.step >= 6 else v for k, v in terms.items()}

    monkeypatch.setattr(losses, "margin_loss", nan_from_step_6)
    out = tmp_path / "run"
    result = CliRunner().invoke(app, ["train", "--model", TINY, "--data", str(faces), "--out", str(out),
                                      "--embedding-size", "16", "--batch-size", "8", "--workers", "0",
                                      "--checkpoint-every", "5", "--log-every", "2", "--threads", "1"])
    assert result.exit_code == 2, result.output
    message = " ".join(result.output.split())
    assert "error: loss_arcface became nan between steps 7 and 8; training stopped," in message
    assert f"{out / 'checkpoint.pt'} (step 5) is the last good checkpoint" in message
    assert "Traceback" not in result.output
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["extra"]["training"]["step"] == 5
    assert all(torch.isfinite(v).all() for v in checkpoint["state_dict"].values() if v.is_floating_point())
    assert [r["loss"] for r in rows(out / "metrics.csv")][-1] == "nan"


def test_cli_tiny_run_writes_the_run_folder_and_verify_reads_it(faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    pairs = faces / "pairs.csv"
    result = CliRunner().invoke(app, [
        "train", "--model", TINY, "--data", str(faces), "--head", "cosface", "--epochs", "2", "--batch-size", "8",
        "--lr", "0.05", "--out", str(out), "--val", f"toy={pairs}", "--val-every", "3", "--seed", "1",
        "--device", "cpu", "--no-amp", "--workers", "0", "--threads", "1", "--embedding-size", "16",
        "--checkpoint-every", "4", "--clip-grad-norm", "5", "--no-val-flip",
    ])  # fmt: skip
    assert result.exit_code == 0, result.output
    assert "trained tiny-test to step 8" in result.output
    names = {p.name for p in out.iterdir()}
    assert {"config.json", "checkpoint.pt", "best.pt", "metrics.csv", "val.csv", "verify.json"} <= names
    saved = json.loads((out / "config.json").read_text())
    assert saved["config"]["head"] == "cosface" and saved["config"]["lr"] == 0.05
    assert saved["config"]["val"] == {"toy": str(pairs)}
    assert (saved["num_classes"], saved["num_images"], saved["steps_per_epoch"]) == (4, 32, 4)
    assert [r["step"] for r in rows(out / "val.csv")] == ["3", "6", "8"]  # every 3 steps and at the end
    verify = json.loads((out / "verify.json").read_text())
    assert verify["meta"]["step"] == 8 and verify["rows"][0]["set"] == "toy"
    assert verify["rows"][0]["accuracy"] == pytest.approx(float(rows(out / "val.csv")[-1]["toy_accuracy"]))
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    training = checkpoint["extra"]["training"]
    assert (training["step"], training["epoch"], training["batch_in_epoch"]) == (8, 2, 0)
    assert set(training) >= {"modules", "optimizers", "schedules", "scalers", "rng", "best"}
    best = load_checkpoint(out / "best.pt")
    assert best["extra"]["best"] == training["best"]
    assert best["extra"]["best"]["score"] == max(float(r["score"]) for r in rows(out / "val.csv"))
    resolved = resolve_model(str(out))
    assert resolved.source == str(out / "best.pt") and not resolved.untrained
    again = CliRunner().invoke(app, ["train", "--resume", str(out), "--threads", "1"])
    assert again.exit_code == 0 and "already finished at step 8; nothing to train" in " ".join(again.output.split())


def test_bad_input_one_line_each(faces: Path, tmp_path: Path) -> None:
    runner = CliRunner()
    out = tmp_path / "run"
    out.mkdir()
    cases = [
        (["--resume", str(out)], "not a run folder with config.json and checkpoint.pt"),
        (["--model", TINY], "give --data DIR|train.rec"),
        (["--model", TINY, "--data", str(faces), "--head", "sphere"], "'sphere' is not one of 'arcface', 'cosface'"),
        (["--model", TINY, "--data", str(faces), "--amp", "--device", "cpu"], "--amp needs a CUDA device"),
        (["--model", TINY, "--data", str(faces), "--batch-size", "64", "--workers", "0", "--out", str(out)],
         "32 images give no full batch of 64 per process"),
        (["--model", TINY, "--data", str(faces), "--val", "lfw=nowhere/pairs.txt"], "nowhere/pairs.txt"),
        (["--model", TINY, "--data", str(faces), "--val", f"a={faces / 'pairs.csv'}", "--val-folds", "1"],
         "Invalid value for '--val-folds'"),
    ]
    for args, expected in cases:
        result = runner.invoke(app, ["train", *args])
        assert result.exit_code == 2, (args, result.output)
        assert expected in " ".join(result.output.split()), (args, result.output)
        assert "Traceback" not in result.output


def test_existing_run_is_not_overwritten_and_resume_refuses_changed_options(faces: Path, tmp_path: Path) -> None:
    out = tmp_path / "run"
    train(config(faces, out, epochs=1, optimizer="adamw", schedule="poly"), progress=False)
    training = load_checkpoint(out / "checkpoint.pt")["extra"]["training"]
    assert set(training["optimizers"][0]["state"][0]) == {"step", "exp_avg", "exp_avg_sq"}  # AdamW's state
    assert training["optimizers"][0]["param_groups"][0]["weight_decay"] == 0.05
    assert training["schedules"][0]["kind"] == "poly"
    with pytest.raises(FacebenchError, match=r"started with epochs=1, not 3"):
        resume_config(out, {"epochs": 3})
    assert resume_config(out, {"device": "cpu", "epochs": 1}).epochs == 1
    with pytest.raises(FacebenchError, match=r"already holds a run"):
        train(config(faces, out, epochs=1, optimizer="adamw", schedule="poly"), progress=False)


def test_val_option_and_fold_subsets() -> None:
    assert parse_named_pairs(["lfw=a/pairs.txt", "b/cfp.bin"]) == {"lfw": "a/pairs.txt", "cfp": "b/cfp.bin"}
    with pytest.raises(FacebenchError, match="used twice"):
        parse_named_pairs(["x=a.txt", "x=b.txt"])
    # two files of one stem (verify --pairs a/pairs.txt --pairs b/pairs.txt): numbered, as verify always named them
    assert parse_named_pairs(["a/pairs.txt", "b/pairs.txt"]) == {"pairs": "a/pairs.txt", "pairs_2": "b/pairs.txt"}
    images = [f"img{i}.jpg" for i in range(8)]
    left, right = np.array([0, 1, 2, 3, 4, 5, 6, 7]), np.array([1, 2, 3, 0, 5, 6, 7, 4])
    folds = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    pairs = PairSet("p", "p.txt", images, left, right, np.array([1, 0] * 4, dtype=bool), folds, np.arange(1, 9))
    subset = first_folds(pairs, 2)
    assert [(subset.images[a], subset.images[b]) for a, b in zip(subset.left, subset.right, strict=True)] == [
        (images[a], images[b]) for a, b in zip(left[:4], right[:4], strict=True)]
    assert subset.images == images[:4] and subset.folds.tolist() == [0, 0, 1, 1] and subset.lines.tolist() == [1, 2, 3, 4]
    assert first_folds(pairs, 4) is pairs



def test_tensorboard_scalars_when_installed(faces: Path, tmp_path: Path) -> None:
    pytest.importorskip("tensorboard")
    train(config(faces, tmp_path / "run", epochs=1, val={"toy": str(faces / "pairs.csv")}), progress=False)
    events = list((tmp_path / "run" / "tensorboard").glob("events.out.tfevents.*"))
    assert events and events[0].stat().st_size > 0


class Crash(Exception):
    """Stands for a crash in the middle of a run."""


def crash_at(at: int):
    def callback(engine, step: int) -> None:
        if step == at:
            raise Crash
    return callback


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize("amp_dtype", ["fp16", "bf16"])
def test_cuda_amp_channels_last_run_crash_and_resume(faces: Path, tmp_path: Path, amp_dtype: str) -> None:
    out = tmp_path / "run"
    options = {"device": "cuda", "amp_dtype": amp_dtype, "channels_last": True, "epochs": 3, "checkpoint_every": 5}
    with pytest.raises(Crash):
        train(config(faces, out, **options), callbacks=[crash_at(7)], progress=False)
    training = load_checkpoint(out / "checkpoint.pt")["extra"]["training"]
    assert training["step"] == 5
    assert bool(training["scalers"][0]) == (amp_dtype == "fp16")  # a GradScaler state only for fp16
    result = train(resume_config(out, {}), resume=True, progress=False)
    assert result.fit.step == 12
    saved = json.loads((out / "config.json").read_text())
    assert saved["amp_dtype"] == {"fp16": "float16", "bf16": "bfloat16"}[amp_dtype] and saved["resumed_at_step"] == 5
    metrics = rows(out / "metrics.csv")
    assert [int(r["step"]) for r in metrics] == list(range(1, 13))
    assert all(math.isfinite(float(r["loss"])) for r in metrics)
