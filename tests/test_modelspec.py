"""The one resolver behind --model, --models and --teacher: the rules of facebench.modelspec's docstring."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facebench.errors import FacebenchError
from facebench.modelspec import MODEL, TEACHER, Spec, parse_spec, seeded_zoo_model
from facebench.runfolder import BEST, CHECKPOINT


def run_folder(path: Path, *names: str) -> Path:
    path.mkdir(parents=True)
    for name in names:
        (path / name).write_bytes(b"x")  # parse_spec only finds files; reading them is load_checkpoint's job
    return path


def test_a_run_folder_gives_best_to_models_and_the_last_checkpoint_to_teachers(tmp_path: Path) -> None:
    both = run_folder(tmp_path / "both", BEST, CHECKPOINT)
    assert parse_spec(str(both), MODEL) == Spec("checkpoint", str(both / BEST), both / BEST)
    assert parse_spec(str(both), TEACHER) == Spec("checkpoint", str(both / CHECKPOINT), both / CHECKPOINT)
    only_best = run_folder(tmp_path / "only_best", BEST)
    assert parse_spec(str(only_best), TEACHER).path == only_best / BEST
    empty = run_folder(tmp_path / "empty")
    with pytest.raises(FacebenchError, match=r"--teacher .*empty: run folder .* has no checkpoint\.pt or best\.pt"):
        parse_spec(str(empty), TEACHER)


def test_a_checkpoint_file_is_itself_for_every_option(tmp_path: Path) -> None:
    file = run_folder(tmp_path / "run", "weights.pt") / "weights.pt"
    assert parse_spec(str(file), MODEL) == parse_spec(str(file), TEACHER) == Spec("checkpoint", str(file), file)


def test_a_zoo_name_is_random_weights_for_models_and_a_trained_run_for_teachers(tmp_path: Path) -> None:
    assert parse_spec("r18", MODEL) == Spec("zoo", "r18")
    with pytest.raises(FacebenchError, match=r"--teacher r18: no trained r18 run at .*r18; train it first"):
        parse_spec("r18", TEACHER, tmp_path)
    run = run_folder(tmp_path / "r18", CHECKPOINT)
    assert parse_spec("r18", TEACHER, tmp_path).path == run / CHECKPOINT


def test_an_external_name_is_that_model_for_every_option() -> None:
    assert parse_spec("dlib", MODEL) == parse_spec("dlib", TEACHER) == Spec("external", "dlib")


def test_an_existing_path_wins_over_a_name(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    run_folder(tmp_path / "r18", CHECKPOINT)
    assert parse_spec("r18", MODEL) == Spec("checkpoint", str(Path("r18") / CHECKPOINT), Path("r18") / CHECKPOINT)


def test_anything_else_is_one_line_naming_the_option(tmp_path: Path) -> None:
    with pytest.raises(FacebenchError, match=r"^--model nope: not a run folder.*zoo models: r18.*external: dlib$"):
        parse_spec("nope", MODEL)
    with pytest.raises(FacebenchError, match=r"^--teacher .*missing\.pt: no such file or folder$"):
        parse_spec(str(tmp_path / "missing.pt"), TEACHER)


def test_seeded_zoo_weights_repeat_and_leave_the_global_generator_alone() -> None:
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first, second = seeded_zoo_model("mbf"), seeded_zoo_model("mbf")
    assert torch.equal(torch.get_rng_state(), before)
    assert all(torch.equal(a, b) for a, b in zip(first.state_dict().values(), second.state_dict().values(), strict=True))


def test_profile_reads_models_through_the_resolver(tmp_path: Path) -> None:
    """profile --models takes a run folder like verify --model: its checkpoint counts as its architecture."""
    from facebench.checkpoint import save_checkpoint
    from facebench.profiling.profile import profile_models
    from facebench.profiling.runtime import RuntimeConfig

    save_checkpoint(tmp_path / "run" / BEST, seeded_zoo_model("mbf"), model_name="mbf", embedding_size=512, config={})
    config = RuntimeConfig(torch.device("cpu"), "fp32", batch_size=1, warmup=0, iters=1, threads=1)
    zoo, run = profile_models(["mbf", str(tmp_path / "run")], config)
    assert run["model"] == str(tmp_path / "run")
    assert (run["params_m"], run["gmacs"], run["size_mb"]) == (zoo["params_m"], zoo["gmacs"], zoo["size_mb"])
    with pytest.raises(FacebenchError, match="^--models nope: not a run folder"):
        profile_models(["mbf", "nope"], config)
