"""Issue 16: options refused while Click parses (before torch), folds without both kinds of pair, messages that
named the wrong thing, and --help screens that list choices, defaults and required options."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
import typer
from typer.core import TyperGroup
from typer.testing import CliRunner

from facebench.cli import app
from facebench.errors import FacebenchError

VERIFY = ["--model", "r18", "--pairs", "p.txt", "--out", "o"]
BAD_OPTIONS = [  # (command line, what the one error line must say)
    (["train", "--lr", "inf", "--model", "r18", "--data", "x"], "'--lr': inf is not a finite number above 0"),
    (["train", "--lr", "nan", "--model", "r18", "--data", "x"], "'--lr': nan is not a finite number"),
    (["train", "--workers", "-1"], "'--workers'"),
    (["train", "--threads", "-1"], "'--threads'"),
    (["train", "--threads", "0"], "'--threads'"),
    (["train", "--scale", "0"], "'--scale': 0.0 is not a finite number above 0"),
    (["train", "--margin", "-0.5"], "'--margin'"),
    (["train", "--epochs", "0"], "'--epochs'"),
    (["train", "--head", "sphere"], "'sphere' is not one of 'arcface', 'cosface'"),
    (["train", "--device", "gpu"], "'--device': 'gpu' is not one of auto, cpu, cuda, cuda:N"),
    (["train", "--align", "magic"], "'magic' is not one of"),
    (["distill", "--method", "magic"], "'magic' is not one of 'none', 'kd', 'adv', 'emb'"),
    (["distill", "--temperature", "0"], "'--temperature'"),
    (["distill", "--disc-lr", "inf"], "'--disc-lr'"),
    (["verify", *VERIFY, "--folds", "1"], "'--folds'"),
    (["verify", *VERIFY, "--format", "xml"], "'xml' is not one of 'auto', 'lfw', 'csv', 'bin'"),
    (["verify", *VERIFY, "--precision", "fp8"], "'fp8' is not one of 'fp32', 'fp16', 'bf16'"),
    (["verify", *VERIFY, "--runtime", "tensorrt"], "'tensorrt' is not one of"),
    (["verify", *VERIFY, "--input-size", "8"], "'--input-size'"),
    (["profile", "--threads", "0"], "'--threads'"),
    (["profile", "--detector", "yolo"], "'yolo' is not one of 'mtcnn', 'yunet', 'retinaface', 'haar'"),
    (["profile", "--device", "cuda:x"], "'--device'"),
    (["align", "--src", "s", "--dst", "d", "--workers", "-1"], "'--workers'"),
    (["align", "--src", "s", "--dst", "d", "--detector", "dlib"], "'dlib' is not one of 'mtcnn', 'yunet', 'retinaface', 'haar', 'center'"),
    (["pack", "--src", "s", "--out", "o", "--min-images", "0"], "'--min-images'"),
    (["pairs", "--data", "d", "--out", "p.txt", "--folds", "0"], "'--folds'"),
    (["pairs", "--data", "d", "--out", "p.txt", "--seed", "-1"], "'--seed'"),
    (["export", "--model", "r18", "--out", "m.onnx", "--quantize", "int4"], "'int4' is not one of"),
    (["export", "--model", "r18", "--out", "m.onnx", "--precision", "bf16"], "'bf16' is not one of 'fp32', 'fp16'"),
    (["check", "--baseline", "b.json", "--acc-tol", "nan"], "'--acc-tol'"),
    (["bench", "--preset", "huge"], "'huge' is not one of 'cpu-small', 'cpu-real', 'paper', 'deploy', 'detectors'"),
]  # fmt: skip

# Each bad option is refused in a fresh interpreter that never imports torch (each import costs 3-4 s of CPU).
SCRIPT = """
import json, sys
from typer.testing import CliRunner
from facebench.cli import app
runs = [CliRunner().invoke(app, args) for args in json.loads(sys.argv[1])]
print(json.dumps({"torch": "torch" in sys.modules, "runs": [[r.exit_code, r.output] for r in runs]}))
"""


def test_bad_options_are_one_line_before_torch(tmp_path: Path) -> None:
    done = subprocess.run([sys.executable, "-c", SCRIPT, json.dumps([args for args, _ in BAD_OPTIONS])],
                          capture_output=True, text=True, check=True, cwd=tmp_path)  # fmt: skip
    report = json.loads(done.stdout)
    for (args, expected), (code, output) in zip(BAD_OPTIONS, report["runs"], strict=True):
        lines = output.strip().splitlines()
        assert code == 2 and len(lines) == 1 and lines[0].startswith("error: Invalid value for "), (args, output)
        assert expected in lines[0], (args, output)
    assert not report["torch"]
    assert not list(tmp_path.iterdir())  # nothing written


def commands() -> dict[str, typer.core.TyperCommand]:
    group = typer.main.get_command(app)
    assert isinstance(group, TyperGroup)
    return group.commands


def render_help(name: str) -> str:
    result = CliRunner().invoke(app, [name, "--help"], env={"COLUMNS": "80"})
    assert result.exit_code == 0, result.output
    return result.output


REQUIRED = {"train": ["--model", "--data"], "distill": ["--student", "--method"],
            "verify": ["--model", "--out"], "align": ["--src", "--dst"], "pack": ["--src", "--out"],
            "pairs": ["--data", "--out"], "export": ["--model", "--out"], "check": ["--baseline"]}  # fmt: skip
CHOICES = {
    "train": ["--head <arcface|cosface>", "--optimizer <sgd|adamw>", "--device <auto|cpu|cuda|cuda:N>",
              "--align <none|center|mtcnn|yunet|retinaface|haar>", "--amp-dtype <bf16|fp16>", "--schedule <cosine|poly>"],
    "distill": ["--method <none|kd|adv|emb>", "--emb-loss <cosine|l2|relational>", "--adv-loss <lsgan|bce>"],
    "verify": ["--format <auto|lfw|csv|bin>", "--precision <fp32|fp16|bf16>", "--runtime <torch|onnxruntime|openvino>",
               "--device <auto|cpu|cuda|cuda:N>", "--align <none|center|mtcnn|yunet|retinaface|haar>"],
    "profile": ["--precision <fp32|fp16|bf16>", "--detector <mtcnn|yunet|retinaface|haar>", "--device <auto|cpu|cuda|cuda:N>"],
    "align": ["--detector <mtcnn|yunet|retinaface|haar|center>"],
    "bench": ["--preset <cpu-small|cpu-real|paper|deploy|detectors>"],
    "pack": ["--align <none|center|mtcnn|yunet|retinaface|haar>"],
    "export": ["--format <onnx|openvino>", "--precision <fp32|fp16>", "--quantize <none|int8|int8-dynamic>"],
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(commands()))
def test_help_lists_choices_defaults_and_required_options(name: str) -> None:
    text = render_help(name)
    assert "<bool>" not in text and "Traceback" not in text
    entries: dict[str, str] = {}  # option -> its help entry, wrapped lines joined
    for line in text.split("Options:")[1].splitlines():
        if line.startswith("  -"):
            option = line.split()[0]
            entries[option] = line
        elif line.strip():
            entries[option] += " " + line.strip()
    for option in REQUIRED.get(name, []):
        entry = " ".join(entries[option].split())
        assert "[required]" in entry or "required unless --resume" in entry, (option, entry)
    if name == "verify":
        assert "[--pairs or --folders required]" in " ".join(entries["--pairs"].split())
    for choice in CHOICES.get(name, []):
        assert choice in text, choice


def test_train_help_shows_defaults_kept_apart_from_resume() -> None:
    flat = " ".join(render_help("train").split())
    assert "--epochs <int range> [default: (10); x>=1]" in flat
    assert "--lr <float> Peak learning rate. [default: (0.1 for sgd, 0.001 for adamw)]" in flat
    options = {p.name: p for p in commands()["train"].params}
    assert options["epochs"].default is None and options["head"].default is None  # --resume tells given from not


def test_choice_tuples_match_the_registries() -> None:
    from facebench.bench.presets import PRESETS
    from facebench.choices import BENCH_PRESETS
    from facebench.distill.config import METHODS
    from facebench.models.heads import list_heads
    from facebench.train.config import HEADS

    assert tuple(list_heads()) == HEADS and tuple(PRESETS) == BENCH_PRESETS
    assert "--method <" + "|".join(METHODS) + ">" in render_help("distill")


def lfw_pairs(tmp_path: Path, order: str) -> Path:
    """2 folds x 2 pairs of each kind over identities a, b; ``order`` 'lfw' (per fold) or 'grouped' (all matched
    first, so fold 0 holds only matched pairs and fold 1 only mismatched)."""
    for name in ("a", "b"):
        (tmp_path / name).mkdir()
        for k in (1, 2):
            (tmp_path / name / f"{name}_{k:04d}.jpg").write_bytes(b"")
    matched, mismatched = ["a 1 2", "b 1 2"], ["a 1 b 1", "a 2 b 2"]
    lines = (matched + mismatched) * 2 if order == "lfw" else matched * 2 + mismatched * 2
    path = tmp_path / "pairs.txt"
    path.write_text("2 2\n" + "\n".join(lines) + "\n")
    return path


def test_fold_without_both_kinds_is_refused(tmp_path: Path) -> None:
    from facebench.eval.verify import load_pair_sets

    path = lfw_pairs(tmp_path, "grouped")
    with pytest.raises(FacebenchError, match=r"pairs.txt: fold 0 holds 4 matched and 0 mismatched pairs; every fold"):
        load_pair_sets({"lfw": str(path)}, None, "--folds")


def test_folds_with_both_kinds_pass(tmp_path: Path) -> None:
    from facebench.eval.verify import load_pair_sets

    (pairs,) = load_pair_sets({"lfw": str(lfw_pairs(tmp_path, "lfw"))}, None, "--folds")
    assert len(pairs) == 8


@pytest.mark.parametrize("text", ["model: r18\n", "root:x:0:0:root:/root:/bin/bash\n", "hello world\n"])
def test_text_file_as_checkpoint_says_so(tmp_path: Path, text: str) -> None:
    from facebench.modelspec import ModelOptions, resolve_model

    path = tmp_path / "passwd"
    path.write_text(text)
    with pytest.raises(FacebenchError) as info:
        resolve_model(str(path), ModelOptions())
    message = str(info.value)
    assert message.startswith(f"{path}: unreadable checkpoint (not a file torch.save writes"), message
    assert "Python objects" not in message and "list index" not in message


def one_error_line(args: list[str]) -> str:
    result = CliRunner().invoke(app, args)
    lines = result.output.strip().splitlines()
    assert result.exit_code == 2 and len(lines) == 1 and "Traceback" not in result.output, result.output
    return lines[0]


def test_check_names_the_option_it_read(tmp_path: Path) -> None:
    missing = tmp_path / "missing.json"
    line = one_error_line(["check", "--baseline", str(missing)])
    assert f"--baseline {missing}: no such file" in line and "--current" not in line
    line = one_error_line(["check", "--baseline", str(missing), "--update", "--current", str(tmp_path / "nowhere")])
    assert f"--current {tmp_path / 'nowhere'}: no such folder" in line and "--runs" not in line
    line = one_error_line(["check", "--baseline", str(missing), "--update"])
    assert f"--current (default: the --baseline's folder) {tmp_path}: neither a results.json" in line


def test_distill_without_data_asks_for_data(tmp_path: Path) -> None:
    line = one_error_line(["distill", "--student", "mobilenet", "--method", "kd", "--teacher", "r18",
                           "--out", str(tmp_path / "run")])  # fmt: skip
    assert "give --data DIR|train.rec" in line and "--model" not in line


def test_unreadable_video_has_no_opencv_warning(tmp_path: Path, capfd: pytest.CaptureFixture[str]) -> None:
    from facebench.profiling.frames import probe_video

    video = tmp_path / "clip.mp4"
    video.write_text("not a video")
    with pytest.raises(FacebenchError, match="cannot be read as a video"):
        probe_video(video)
    assert "WARN" not in capfd.readouterr().err
