"""bench --preset detectors: the plan, a tiny bench end to end (every step, resume, the table against its run
folders), the crop sets against align's own crops on real faces, and the crop distance by hand."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path
from typing import NamedTuple

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from rich.console import Console
from test_verify_cmd import write_lfw
from typer.testing import CliRunner

from facebench.bench.detector_table import (
    DETECTORS,
    DetectorPreset,
    check_detector_inputs,
    crop_set_names,
    plan_detector_steps,
)
from facebench.bench.plan import run_bench
from facebench.bench.steps import CROPS, DONE, DetectStep, ReportStep, VerifyStep
from facebench.cli import app
from facebench.data.align import align_face, center_crop, similarity_to_template, warp_to_template
from facebench.data.detectors import build_detector, main_face
from facebench.data.images import encode_jpeg, read_image
from facebench.data.landmarks import correct_landmarks
from facebench.modelspec import seeded_zoo_model
from facebench.profiling.detector_timing import detect_photos, time_clip
from facebench.report.detectors import crop_distance

class Tiny(NamedTuple):
    root: Path
    states: list[str]  # the first bench's step states
    again: list[str]  # each step's state when planned again
    preset: DetectorPreset


REAL_PHOTOS = ["Aaron_Eckhart/Aaron_Eckhart_0001.jpg", "Aaron_Peirsol/Aaron_Peirsol_0001.jpg"]


def write_clip(path: Path, frames: int = 4) -> Path:
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 25, (160, 120))
    rng = np.random.default_rng(1)
    for _ in range(frames):
        writer.write(rng.integers(0, 256, (120, 160, 3), dtype=np.uint8))
    writer.release()
    return path


def test_the_plan_detects_each_detector_once_then_verifies_each_crop_set() -> None:
    steps = plan_detector_steps(DETECTORS, Path("runs/d"), Path("reports/d"))
    detects = [s for s in steps if isinstance(s, DetectStep)]
    verifies = [s for s in steps if isinstance(s, VerifyStep)]
    assert [s.detector for s in detects] == ["mtcnn", "yunet", "retinaface", "haar"]
    assert [s.folder.name for s in verifies] == ["mtcnn", "yunet-none", "yunet-linear", "retinaface-none",
                                                 "retinaface-linear", "haar"]  # fmt: skip
    assert isinstance(steps[-1], ReportStep) and len(steps) == 4 + 6 + 1
    yunet = detects[1]
    assert yunet.crop_sets == {"none": Path("runs/d/yunet-none"), "linear": Path("runs/d/yunet-linear")}
    for step in verifies:  # 6000 pairs and every pair of the same crops, pretrained MobileFaceNet, no flip
        crops = str(step.folder / CROPS)
        assert (step.spec, step.weights, step.images_root, step.folders) == (
            "mfn128", DETECTORS.weights, crops, {"lfw-all": crops})
        assert (step.align, step.flip, step.folds) == ("none", False, None)
    assert crop_set_names(DETECTORS, "haar") == {"none": "haar"}


def test_bench_detectors_takes_no_data_and_names_a_missing_input(tmp_path: Path) -> None:
    result = CliRunner().invoke(app, ["bench", "--preset", "detectors", "--val", "x=y.txt", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "takes no --data or --val" in result.output
    missing = dataclasses.replace(DETECTORS, clip=str(tmp_path / "no.mp4"))
    with pytest.raises(Exception, match=r"no\.mp4: no such file or folder \(street clip of --preset detectors\)"):
        check_detector_inputs(missing)


@pytest.fixture(scope="module")
def tiny_bench(tmp_path_factory: pytest.TempPathFactory) -> Tiny:
    """Haar and YuNet (none, linear) on the tiny LFW tree (noise: no face anywhere), a 4-frame clip, seeded mfn128."""
    root = tmp_path_factory.mktemp("detectors")
    write_lfw(root / "lfw")
    torch.save(seeded_zoo_model("mfn128").state_dict(), root / "weights.pt")
    preset = dataclasses.replace(
        DETECTORS, detectors=("haar", "yunet"), lfw=str(root / "lfw"), clip=str(write_clip(root / "clip.mp4")),
        weights=str(root / "weights.pt"), timing_images=3, warmup=1, clip_frames=4, verify_batch_size=8,
    )  # fmt: skip
    states = run_bench(plan_detector_steps(preset, root / "runs", root / "report"), preset, root / "runs",
                       Console(quiet=True), check=lambda _: check_detector_inputs(preset))  # fmt: skip
    again = [step.state() for step in plan_detector_steps(preset, root / "runs", root / "report")]
    return Tiny(root, states, again, preset)


def test_every_step_ran_and_a_second_bench_finds_them_done(tiny_bench: Tiny) -> None:
    states, again = tiny_bench.states, tiny_bench.again
    assert set(states) == {"ran"} and len(states) == 2 + 3 + 1
    assert again[:-1] == [DONE] * 5  # the report is always rebuilt


def test_the_table_counts_the_fallbacks_and_reports_each_crop_sets_verification(
        tiny_bench: Tiny) -> None:  # fmt: skip
    root = tiny_bench.root
    table = pd.read_csv(root / "report" / "detectors.csv")
    assert list(zip(table.detector, table.correction, strict=True)) == [("haar", "-"), ("yunet", "none"),
                                                                        ("yunet", "linear")]  # fmt: skip
    assert (table.images == 12).all() and (table.faces_found == 0).all() and (table.fallbacks == 12).all()
    for row in table.itertuples():
        folder = root / "runs" / (row.detector if row.correction == "-" else f"{row.detector}-{row.correction}")
        (pairs_row, all_pairs_row) = json.loads((folder / "verify.json").read_text())["rows"]
        assert row.accuracy_pct == pytest.approx(100 * pairs_row["accuracy"], abs=1e-3)
        assert row.rank1_pct == pytest.approx(100 * all_pairs_row["rank1"], abs=1e-3)
        assert np.isnan(row.crop_vs_mtcnn_px)  # no MTCNN in this bench to compare with
    detect = np.load(root / "runs" / "detect-yunet" / "detect.npz")
    assert detect["ms"].shape == (12,) and (detect["ms"] > 0).all() and detect["ms_timed"].shape == (3,)
    assert detect["clip_ms"].shape == (4,) and np.isnan(detect["landmarks"]).all()
    markdown = (root / "report" / "detectors.md").read_text()
    assert "| haar " in markdown and "ms/photo 2 threads (p50)" in markdown and "4 frames of clip.mp4" in markdown


def test_no_face_means_the_centre_crop_in_every_crop_set(tiny_bench: Tiny) -> None:
    root = tiny_bench.root
    photo = "Ann_A/Ann_A_0001.jpg"
    expected = encode_jpeg(center_crop(read_image(root / "lfw" / photo)))
    for crop_set in ("haar", "yunet-none", "yunet-linear"):
        assert (root / "runs" / crop_set / CROPS / photo).read_bytes() == expected, crop_set


def test_redetecting_drops_the_stale_verification(tiny_bench: Tiny) -> None:
    root = tiny_bench.root
    step = DetectStep("detect", root / "again", "haar", str(root / "lfw"), str(root / "clip.mp4"),
                      {"none": root / "runs" / "haar"}, 2, 1, 1, 2, 0)  # fmt: skip
    assert step.state() != DONE
    step.run(Console(quiet=True), resume=False)
    assert step.state() == DONE and not (root / "runs" / "haar" / "verify.json").exists()


def test_a_bench_that_redetects_verifies_those_crops_again(tiny_bench: Tiny) -> None:
    root, preset = tiny_bench.root, tiny_bench.preset
    (root / "runs" / "detect-yunet" / "detect.json").unlink()  # as if yunet's detection had to be redone
    states = run_bench(plan_detector_steps(preset, root / "runs", root / "report"), preset, root / "runs",
                       Console(quiet=True), check=lambda _: check_detector_inputs(preset))  # fmt: skip
    titles = [step.title for step in plan_detector_steps(preset, root / "runs", root / "report")]
    ran = {title for title, state in zip(titles, states, strict=True) if state == "ran"}
    assert {"detect LFW (yunet)", "verify mfn128 on yunet crops (correction none)",
            "verify mfn128 on yunet crops (correction linear)"} <= ran
    assert "detect LFW (haar)" not in ran


def test_crop_sets_hold_the_crops_align_makes_on_real_faces(shared_data: Path, tmp_path: Path) -> None:
    lfw = shared_data / "lfw"
    if not all((lfw / p).is_file() for p in REAL_PHOTOS):
        pytest.skip("the LFW photos are not present")
    sets = {"none": tmp_path / "none", "linear": tmp_path / "linear"}
    found = detect_photos("retinaface", lfw, REAL_PHOTOS, sets)
    assert (found["faces"] >= 1).all()
    raw = build_detector("retinaface", correction="none")
    for i, photo in enumerate(REAL_PHOTOS):
        image = read_image(lfw / photo)
        face = main_face(raw.detect(image), *image.shape[:2])
        np.testing.assert_allclose(found["landmarks"][i], face.landmarks, atol=1e-4)  # raw points recorded
        linear = align_face(image, build_detector("retinaface")).image  # what `align --detector retinaface` crops
        assert (sets["linear"] / photo).read_bytes() == encode_jpeg(linear)
        assert (sets["none"] / photo).read_bytes() == encode_jpeg(warp_to_template(image, face.landmarks))
        assert not np.array_equal(correct_landmarks("retinaface", face.landmarks), face.landmarks)


def test_crop_distance_by_hand() -> None:
    reference = np.array([[38.3, 51.7], [73.5, 51.5], [56.0, 71.7], [41.5, 92.4], [70.7, 92.2]], dtype=np.float64)
    assert crop_distance(reference, reference) == pytest.approx(0, abs=1e-9)
    shift = np.array([3.0, -4.0])  # the detector's points 5 px off MTCNN's: the same warp up to that shift
    matrix = similarity_to_template(reference + shift)
    expected = np.linalg.norm(matrix[:, :2] @ shift)  # where the warp moves MTCNN's points: A (q - p)
    assert crop_distance(reference + shift, reference) == pytest.approx(expected, rel=1e-4)
    assert expected == pytest.approx(5 * np.sqrt(abs(np.linalg.det(matrix[:, :2]))), rel=1e-4)


def test_time_clip_times_every_frame_asked_for(tmp_path: Path) -> None:
    times, faces = time_clip("haar", write_clip(tmp_path / "c.mp4", frames=5), 3, 1)
    assert times.shape == (3,) and (times > 0).all() and faces == 0
