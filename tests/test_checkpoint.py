"""Checkpoint round trip, provenance, refusals, and the --model resolver."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from facebench.checkpoint import load_checkpoint, save_checkpoint
from facebench.errors import FacebenchError
from facebench.input_spec import random_input
from facebench.models import create_model
from facebench.modelspec import model_from_checkpoint, model_recipe, resolve_model


def saved_mbf(path: Path, embedding_size: int = 128) -> torch.nn.Module:
    torch.manual_seed(1)
    model = create_model("mbf", embedding_size=embedding_size).eval()
    save_checkpoint(path, model, model_name="mbf", embedding_size=embedding_size, config={"lr": 0.1}, extra={"epoch": 3})
    return model


def test_round_trip_gives_the_same_embeddings(tmp_path: Path) -> None:
    model = saved_mbf(tmp_path / "run" / "checkpoint.pt")
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["checkpoint.pt"]  # no temp file left
    checkpoint = load_checkpoint(tmp_path / "run" / "checkpoint.pt")
    assert checkpoint["model"] == "mbf" and checkpoint["embedding_size"] == 128
    assert checkpoint["config"] == {"lr": 0.1} and checkpoint["extra"] == {"epoch": 3}
    provenance = checkpoint["provenance"]
    assert provenance["facebench_version"] and provenance["torch_version"] == torch.__version__
    assert provenance["time_utc"]
    resolved = resolve_model(str(tmp_path / "run"))
    assert (resolved.name, resolved.untrained, resolved.source) == ("mbf", False, str(tmp_path / "run" / "checkpoint.pt"))
    assert not resolved.model.training
    x = random_input(2)
    with torch.inference_mode():
        torch.testing.assert_close(resolved.model(x), model(x), rtol=0, atol=0)


def test_run_folder_prefers_best(tmp_path: Path) -> None:
    saved_mbf(tmp_path / "checkpoint.pt")
    saved_mbf(tmp_path / "best.pt", embedding_size=64)
    resolved = resolve_model(str(tmp_path))
    assert resolved.source == str(tmp_path / "best.pt")
    assert resolved.label == f"mbf ({tmp_path / 'best.pt'})"


def test_wrong_architecture_names_both(tmp_path: Path) -> None:
    saved_mbf(tmp_path / "m.pt")
    checkpoint = load_checkpoint(tmp_path / "m.pt")
    with pytest.raises(FacebenchError, match=r"m\.pt: checkpoint holds mbf weights, not mobilenet"):
        model_from_checkpoint(checkpoint, tmp_path / "m.pt", "mobilenet")
    checkpoint["model"] = "mobilenet"  # a file whose weights are not those of the model it names
    with pytest.raises(FacebenchError, match=r"m\.pt: its state_dict does not fit the mobilenet architecture"):
        model_from_checkpoint(checkpoint, tmp_path / "m.pt")


def test_unreadable_and_foreign_checkpoints(tmp_path: Path) -> None:
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(FacebenchError, match=r"junk\.pt: unreadable checkpoint"):
        resolve_model(str(tmp_path / "junk.pt"))
    torch.save({"state_dict": {}}, tmp_path / "plain.pt")
    with pytest.raises(FacebenchError, match=r"plain\.pt: not a facebench checkpoint"):
        load_checkpoint(tmp_path / "plain.pt")
    with pytest.raises(FacebenchError, match="has no best.pt or checkpoint.pt"):
        resolve_model(str(tmp_path))
    with pytest.raises(FacebenchError, match="no such file"):
        resolve_model(str(tmp_path / "absent.pt"))
    with pytest.raises(FacebenchError, match="zoo models: r18"):
        resolve_model("resnet9000")


def test_zoo_name_is_seeded_random_and_untrained() -> None:
    first, second = resolve_model("mbf"), resolve_model("mbf")
    assert first.untrained and first.label == "mbf (untrained)" and first.source == "zoo"
    for a, b in zip(first.model.state_dict().values(), second.model.state_dict().values(), strict=True):
        assert torch.equal(a, b)
    state = torch.random.get_rng_state()
    resolve_model("mbf")
    assert torch.equal(state, torch.random.get_rng_state())  # the global RNG is left alone


def test_model_recipe_reads_the_file_now_and_builds_later(tmp_path: Path) -> None:
    model = saved_mbf(tmp_path / "c.pt")
    recipe = model_recipe(str(tmp_path / "c.pt"))
    (tmp_path / "c.pt").unlink()  # already read
    first, second = recipe.build(), recipe.build()
    assert first is not second and not first.training
    assert (recipe.name, recipe.source, recipe.untrained, recipe.external) == ("mbf", str(tmp_path / "c.pt"), False, False)
    x = random_input(2)
    with torch.inference_mode():
        torch.testing.assert_close(first(x), model(x), rtol=0, atol=0)
    external = model_recipe("dlib")  # nothing loaded (dlib need not be installed) until build()
    assert external.external and external.name == "dlib" and not external.untrained
