"""`facebench profile --video`: frames, alignment and embedding buffers, a real pass, the CLI, bad input."""

from __future__ import annotations

import json
import time
from pathlib import Path

import cv2
import numpy as np
import pandas as pd
import pytest
import torch
from torch import nn

from facebench.checkpoint import save_checkpoint
from facebench.cli import app
from facebench.data.align import warp_to_template
from facebench.data.detectors import Face, build_detector, get_detector
from facebench.errors import FacebenchError
from facebench.input_spec import to_model_input
from facebench.models import create_model
from facebench.profiling import video as video_module
from facebench.profiling.frames import Frame, planned_frames, probe_video, read_frames
from facebench.profiling.video import VideoConfig, VideoRun, run_video, summarise_run
from facebench.profiling.video_pipeline import STAGES, BatchEmbedder, FaceAligner, VideoPipeline
from facebench.profiling.video_run import VideoOptions, plan_video_profile
from facebench.profiling.video_stream import stream_results

# two LFW faces that the Haar detector finds when pasted at 120 px
LFW_FACES = ("AJ_Lamas/AJ_Lamas_0001.jpg", "Aaron_Patterson/Aaron_Patterson_0001.jpg")
CLIP_FRAMES = 6
CPU = torch.device("cpu")


class TinyEmbedder(nn.Module):
    """A few-kFLOP stand-in for a zoo model: 112x112x3 -> 8-d."""

    def __init__(self) -> None:
        super().__init__()
        torch.manual_seed(0)
        self.conv = nn.Conv2d(3, 4, 5, stride=4)
        self.fc = nn.Linear(4 * 4 * 4, 8)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(nn.functional.adaptive_avg_pool2d(self.conv(x), 4).flatten(1))


def write_clip(path: Path, frames: list[np.ndarray], fps: float = 10.0) -> Path:
    """RGB frames -> an mp4v .mp4."""
    height, width = frames[0].shape[:2]
    writer = cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), fps, (width, height))
    for frame in frames:
        writer.write(cv2.cvtColor(frame, cv2.COLOR_RGB2BGR))
    writer.release()
    return path


def face_frames(lfw: Path, count: int = CLIP_FRAMES) -> list[np.ndarray]:
    """Two real faces (120 px) on a grey 400x240 background, walking 4 px per frame towards each other."""
    paths = [lfw / name for name in LFW_FACES]
    if not all(p.is_file() for p in paths):
        pytest.skip("the LFW test faces are not in ../shared/data/lfw")
    crops = [cv2.resize(cv2.cvtColor(cv2.imread(str(p)), cv2.COLOR_BGR2RGB)[40:210, 40:210], (120, 120)) for p in paths]
    frames = []
    for k in range(count):
        frame = np.full((240, 400, 3), 90, dtype=np.uint8)
        frame[40:160, 10 + 4 * k : 130 + 4 * k] = crops[0]
        frame[40:160, 220 - 4 * k : 340 - 4 * k] = crops[1]
        frames.append(frame)
    return frames


def colour_frames(count: int) -> list[np.ndarray]:
    """Flat frames whose red channel encodes the index (20 * i) and blue its complement."""
    frames = []
    for i in range(count):
        frame = np.zeros((64, 96, 3), dtype=np.uint8)
        frame[..., 0], frame[..., 2] = 20 * i, 255 - 20 * i
        frames.append(frame)
    return frames


@pytest.fixture
def face_clip(shared_data: Path, tmp_path: Path) -> Path:
    return write_clip(tmp_path / "faces.mp4", face_frames(shared_data / "lfw"))


# ---- frames ---------------------------------------------------------------------------------


def test_read_frames_every_max_frames_and_rgb_order(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "colours.mp4", colour_frames(10))
    info = probe_video(clip)
    assert (info.width, info.height, info.frame_count) == (96, 64, 10)
    indexes, buffers = [], set()
    for frame in read_frames(clip, every=3):
        indexes.append(frame.index)
        buffers.add(frame.rgb.__array_interface__["data"][0])
        red, green, blue = frame.rgb.reshape(-1, 3).mean(axis=0)
        assert red == pytest.approx(20 * frame.index, abs=8) and blue == pytest.approx(255 - 20 * frame.index, abs=8)
        assert green < 8 and frame.decode_ms > 0
    assert indexes == [0, 3, 6, 9]
    assert len(buffers) == 1  # decoded into one reused RGB buffer
    ring = [f.rgb.__array_interface__["data"][0] for f in read_frames(clip, buffers=3)]
    assert len(set(ring)) == 3 and ring == [ring[k % 3] for k in range(10)]  # frame k in buffer k % 3
    assert [f.index for f in read_frames(clip, every=4, max_frames=2)] == [0, 4]
    assert planned_frames(info, 3) == 4 and planned_frames(info, 4, 2) == 2 and planned_frames(info) == 10


# ---- align and embed ------------------------------------------------------------------------


def _face(landmarks: np.ndarray) -> Face:
    return Face(np.zeros(4, dtype=np.float32), 1.0, np.asarray(landmarks, dtype=np.float32))


def test_face_aligner_matches_warp_to_template_and_skips_degenerate() -> None:
    rng = np.random.default_rng(0)
    frame = rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8)
    base = np.array([[100, 80], [140, 80], [120, 100], [105, 120], [135, 120]], dtype=np.float32)
    faces = [_face(base + rng.normal(0, 2, size=(5, 2)) + [10 * k, 5 * k]) for k in range(10)]
    degenerate = _face(np.full((5, 2), 50.0))
    aligner = FaceAligner(capacity=2)  # grows to fit ten faces
    crops, kept = aligner([frame], [[faces[0], degenerate, *faces[1:]]])
    assert crops.shape == (10, 112, 112, 3) and kept == [faces]
    for crop, face in zip(crops, faces, strict=True):
        np.testing.assert_array_equal(crop, warp_to_template(frame, face.landmarks))
    empty, none = aligner([frame], [[]])
    assert empty.shape == (0, 112, 112, 3) and none == [[]]


def test_face_aligner_puts_several_frames_faces_in_frame_order() -> None:
    rng = np.random.default_rng(1)
    frames = [rng.integers(0, 256, size=(200, 300, 3), dtype=np.uint8) for _ in range(3)]
    base = np.array([[100, 80], [140, 80], [120, 100], [105, 120], [135, 120]], dtype=np.float32)
    faces = [[_face(base + [20 * k, 0]) for k in range(n)] for n in (2, 0, 3)]
    crops, kept = FaceAligner(capacity=1)(frames, faces)
    assert crops.shape == (5, 112, 112, 3) and kept == faces
    expected = [warp_to_template(frame, face.landmarks) for frame, group in zip(frames, faces) for face in group]
    np.testing.assert_array_equal(crops, np.stack(expected))


@pytest.mark.parametrize("channels_last", [False, True])
def test_batch_embedder_equals_plain_forward(channels_last: bool) -> None:
    model = TinyEmbedder().eval()
    embedder = BatchEmbedder(model, CPU, channels_last=channels_last)
    rng = np.random.default_rng(1)
    for n in (3, 5, 2, 0):  # buffers grow, then are reused for a smaller batch
        crops = rng.integers(0, 256, size=(n, 112, 112, 3), dtype=np.uint8)
        got = embedder(crops)
        if n == 0:
            assert got.size == 0
            continue
        with torch.inference_mode():
            expected = model(to_model_input(crops)).numpy()
        assert got.dtype == np.float32 and got.shape == (n, 8)
        np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
@pytest.mark.parametrize(("dtype", "tolerance"), [(torch.float32, 1e-4), (torch.float16, 2e-2)])
def test_batch_embedder_on_cuda_matches_cpu(dtype: torch.dtype, tolerance: float) -> None:
    model = TinyEmbedder().eval()
    cuda = torch.device("cuda")
    embedder = BatchEmbedder(TinyEmbedder().eval().to(cuda, dtype), cuda, dtype)
    rng = np.random.default_rng(2)
    for n in (4, 6, 1):  # pinned staging and device buffers grow, then are reused
        crops = rng.integers(0, 256, size=(n, 112, 112, 3), dtype=np.uint8)
        with torch.inference_mode():
            expected = model(to_model_input(crops)).numpy()
        got = embedder(crops)
        assert got.dtype == np.float32
        np.testing.assert_allclose(got, expected, atol=tolerance * np.abs(expected).max(), rtol=0)


def test_summarise_run_from_known_times() -> None:
    stage_ms = np.array([[1.0, 10.0, 0.5, 4.0], [3.0, 14.0, 0.0, 0.0], [2.0, 12.0, 1.0, 8.0]])
    run = VideoRun(stage_ms, np.array([1, 0, 2]), [0, 0, 1], np.array([[1.0, 0], [1.0, 0], [0, 1.0]]), 1, {})
    row = summarise_run(run)
    totals = stage_ms.sum(axis=1)
    assert row["frames"] == 3 and row["faces"] == 3 and row["frames_without_faces"] == 1
    assert row["detect_ms_mean"] == pytest.approx(12.0) and row["detect_ms_std"] == pytest.approx(2.0)
    assert row["total_ms_mean"] == pytest.approx(totals.mean())
    assert row["total_ms_p95"] == pytest.approx(np.percentile(totals, 95))
    assert row["fps"] == pytest.approx(1000 / totals.mean())
    assert row["embed_ms_per_face"] == pytest.approx(12.0 / 3)
    assert row["faces_per_frame"] == pytest.approx(1.0)
    assert row["track_cos_consecutive"] == pytest.approx(1.0) and row["track_cos_between"] == pytest.approx(0.0)
    assert row["embeddings_nonfinite_or_zero"] == 0
    run.embeddings[1] = [np.inf, 0]
    run.embeddings[2] = 0
    assert summarise_run(run)["embeddings_nonfinite_or_zero"] == 2


# ---- a real pass ----------------------------------------------------------------------------


def test_run_video_on_real_faces_with_haar(face_clip: Path) -> None:
    config = VideoConfig(CPU, detector="haar", warmup=1, threads=1)
    seen = []
    run = run_video(TinyEmbedder, face_clip, [get_detector("haar")], config, lambda f, r, ids: seen.append((f.index, ids)))
    assert run.stage_ms.shape == (CLIP_FRAMES, len(STAGES)) and (run.stage_ms[:, :2] > 0).all()
    assert run.faces_per_frame.tolist() == [2] * CLIP_FRAMES
    assert run.embeddings.shape == (2 * CLIP_FRAMES, 8)
    # the two walking faces keep their track ids from frame to frame
    assert [index for index, _ in seen] == list(range(CLIP_FRAMES))
    assert all(sorted(ids) == [0, 1] for _, ids in seen)
    row = summarise_run(run)
    assert row["tracks"] == 2 and row["track_pairs_consecutive"] == 2 * (CLIP_FRAMES - 1)
    # a face compared with itself a frame later is closer than with the other person, even untrained
    assert row["track_cos_consecutive"] > row["track_cos_between"]
    assert run.threads == 1 and run.memory["mem_rss_peak_growth_mb"] >= 0


class RecordingEmbedder(TinyEmbedder):
    """Remembers the batch size of every forward."""

    def __init__(self) -> None:
        super().__init__()
        self.batches: list[int] = []

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        self.batches.append(len(x))
        return super().forward(x)


def test_run_video_counts_frames_without_faces(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "blank.mp4", colour_frames(5))
    model = RecordingEmbedder()
    config = VideoConfig(CPU, detector="haar", warmup=1, every=2)
    run = run_video(lambda: model, clip, [get_detector("haar")], config)
    row = summarise_run(run)
    assert row["frames"] == 3 and row["faces"] == 0 and row["frames_without_faces"] == 3
    assert np.isnan(row["embed_ms_per_face"]) and row["tracks"] == 0
    # warm-up ran one forward at each batch size 1..8; frames without faces run none
    assert model.batches == list(range(1, 9))


class IndexDetector:
    """Reads a colour_frames frame's index from its red channel and finds index % 3 faces
    scored with that index, so every result shows which frame it was computed from. It
    sleeps first, so a decoder running ahead would overwrite a frame still being detected."""

    name = "index"
    landmarks = np.array([[30, 20], [50, 20], [40, 30], [32, 42], [48, 42]], dtype=np.float32)

    def detect(self, image: np.ndarray) -> list[Face]:
        time.sleep(0.002)
        index = round(float(image[..., 0].mean()) / 20)
        box = np.array([20, 10, 60, 50], dtype=np.float32)
        return [Face(box + 2 * k, float(index), self.landmarks + [2 * k, k]) for k in range(index % 3)]


def test_pipeline_group_shares_one_forward_and_matches_frame_by_frame(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "colours.mp4", colour_frames(7))
    frames = [Frame(f.index, f.rgb.copy(), f.bgr.copy(), f.decode_ms) for f in read_frames(clip)]
    model = RecordingEmbedder()
    single = VideoPipeline(IndexDetector(), BatchEmbedder(model, CPU))
    one_by_one = [single.process([frame])[0] for frame in frames]
    model.batches.clear()
    grouped = VideoPipeline(IndexDetector(), BatchEmbedder(model, CPU))
    results = grouped.process(frames[:4]) + grouped.process(frames[4:])
    assert model.batches == [0 + 1 + 2 + 0, 1 + 2 + 0]  # one forward per group
    for alone, together in zip(one_by_one, results, strict=True):
        assert together.index == alone.index and len(together.faces) == together.index % 3
        assert [f.score for f in together.faces] == [float(together.index)] * (together.index % 3)
        np.testing.assert_allclose(together.embeddings.reshape(-1, 8), alone.embeddings.reshape(-1, 8), atol=1e-6)
        assert together.stage_ms[0] == alone.stage_ms[0] > 0 and together.stage_ms[1] > 0
    # a group's align and embed times go to its frames in proportion to their faces
    assert results[0].stage_ms[2:] == (0.0, 0.0) and results[3].stage_ms[2:] == (0.0, 0.0)
    assert results[2].stage_ms[3] == pytest.approx(2 * results[1].stage_ms[3])
    assert results[2].stage_ms[2] == pytest.approx(2 * results[1].stage_ms[2])


@pytest.mark.parametrize(("workers", "batch_frames"), [(1, 3), (2, 1), (3, 2)])
def test_stream_results_in_order_with_frames_intact(tmp_path: Path, workers: int, batch_frames: int) -> None:
    clip = write_clip(tmp_path / "colours.mp4", colour_frames(11))
    model = TinyEmbedder()

    def run(workers: int, batch_frames: int) -> list[tuple[int, list[float], np.ndarray]]:
        pipelines = [VideoPipeline(IndexDetector(), BatchEmbedder(model, CPU)) for _ in range(workers)]
        out = []
        for frame, result in stream_results(pipelines, clip, batch_frames=batch_frames):
            # the yielded frame's buffers still hold that frame
            assert frame.index == result.index and frame.rgb[..., 0].mean() == pytest.approx(20 * frame.index, abs=8)
            out.append((result.index, [f.score for f in result.faces], result.embeddings.reshape(-1, 8)))
        return out

    reference = run(1, 1)
    assert [index for index, _, _ in reference] == list(range(11))
    assert all(scores == [float(index)] * (index % 3) for index, scores, _ in reference)
    got = run(workers, batch_frames)
    assert [(i, scores) for i, scores, _ in got] == [(i, scores) for i, scores, _ in reference]
    for (_, _, a), (_, _, b) in zip(got, reference, strict=True):
        np.testing.assert_allclose(a, b, atol=1e-6)


def test_run_video_with_workers_and_groups_matches_one_worker(face_clip: Path) -> None:
    one = run_video(TinyEmbedder, face_clip, [build_detector("haar")], VideoConfig(CPU, detector="haar", warmup=1))
    config = VideoConfig(CPU, detector="haar", warmup=1, threads=1, batch_frames=2, workers=2)
    two = run_video(TinyEmbedder, face_clip, [build_detector("haar") for _ in range(2)], config)
    assert two.track_ids == one.track_ids and two.faces_per_frame.tolist() == one.faces_per_frame.tolist()
    np.testing.assert_allclose(two.embeddings, one.embeddings, atol=1e-6)
    assert two.workers == 2 and two.threads == 1 and 0 < two.wall_s
    assert summarise_run(two)["fps"] == pytest.approx(CLIP_FRAMES / two.wall_s)
    assert summarise_run(one)["fps"] == pytest.approx(1000 / one.stage_ms.sum(axis=1).mean())


def test_video_config_checks_groups_and_shares_cores(monkeypatch: pytest.MonkeyPatch) -> None:
    for option in ("workers", "batch_frames"):
        with pytest.raises(FacebenchError, match=f"--{option.replace('_', '-')} must be >= 1, got 0"):
            VideoConfig(CPU, **{option: 0})
    monkeypatch.setattr(video_module, "usable_cores", lambda: 16)
    assert VideoConfig(CPU).worker_threads() is None  # torch's default
    assert VideoConfig(CPU, workers=4).worker_threads() == 4
    assert VideoConfig(CPU, workers=32).worker_threads() == 1
    assert VideoConfig(CPU, workers=4, threads=2).worker_threads() == 2


# ---- options and plan -----------------------------------------------------------------------

VIDEO_ONLY = {"detector": "haar", "max_frames": 3, "every": 2, "save_annotated": Path("a.mp4"), "batch_frames": 2,
              "workers": 2}  # fmt: skip
PLAN_ARGS = {"device": "cpu", "precision": "fp32", "warmup": 0, "threads": None, "channels_last": False}


def test_video_options_refuse_each_video_only_option_without_video() -> None:
    for name, value in VIDEO_ONLY.items():
        option = f"--{name.replace('_', '-')}"
        message = f"^{option} only apply with --video; add --video clip.mp4 or drop them$"
        with pytest.raises(FacebenchError, match=message):
            VideoOptions(**{name: value}).check()
    with pytest.raises(FacebenchError, match="^--max-frames, --workers only apply with --video; add"):
        VideoOptions(max_frames=3, workers=2).check()
    VideoOptions().check()  # nothing video-only given
    VideoOptions(Path("clip.mp4"), **VIDEO_ONLY).check()  # all of them apply with a video


def test_video_options_refuse_unknown_detector() -> None:
    with pytest.raises(FacebenchError, match="^--detector 'yolo' is not one of: mtcnn, yunet, retinaface, haar$"):
        VideoOptions(Path("clip.mp4"), detector="yolo").check()
    VideoOptions(Path("clip.mp4")).check()  # mtcnn by default


def test_plan_refuses_no_models_then_unknown_models_before_options_and_video(tmp_path: Path) -> None:
    options = VideoOptions(tmp_path / "nope.mp4", detector="yolo")
    with pytest.raises(FacebenchError, match="^--models: give at least one model name"):
        plan_video_profile([], options, **PLAN_ARGS)
    with pytest.raises(FacebenchError, match="resnet9000"):
        plan_video_profile(["resnet9000"], options, **PLAN_ARGS)
    with pytest.raises(FacebenchError, match="^--detector 'yolo'"):
        plan_video_profile(["mobilenet"], options, **PLAN_ARGS)


def test_plan_resolves_defaults_and_counts_frames(tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "clip.mp4", colour_frames(5))
    plan = plan_video_profile(["mobilenet"], VideoOptions(clip, every=2), **PLAN_ARGS)
    config = plan.config
    resolved = (config.detector, config.every, config.max_frames, config.batch_frames, config.workers)
    assert resolved == ("mtcnn", 2, None, 1, 1)
    assert [m.name for m in plan.models] == ["mobilenet"] and plan.info.path == clip and plan.save_annotated is None
    assert plan.frames == 3


# ---- CLI ------------------------------------------------------------------------------------

VIDEO_ARGS = ["--models", "mobilenet", "--detector", "haar", "--device", "cpu", "--threads", "1", "--warmup", "1"]


def test_cli_video_profile_files_and_annotated_video(runner, face_clip: Path, tmp_path: Path) -> None:
    out, annotated = tmp_path / "report", tmp_path / "ann" / "annotated.mp4"
    args = ["profile", "--video", str(face_clip), *VIDEO_ARGS, "--max-frames", "4", "--out", str(out),
            "--save-annotated", str(annotated)]  # fmt: skip
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    frame = pd.read_csv(out / "video_profile.csv")
    assert frame["model"].tolist() == ["mobilenet"]
    row = frame.iloc[0]
    assert row["frames"] == 4 and row["faces"] == 8 and row["detector"] == "haar" and row["threads"] == 1
    for stage in (*STAGES, "total"):
        for stat in ("mean", "std", "p50", "p95"):
            assert f"{stage}_ms_{stat}" in frame.columns
    stage_sum = sum(row[f"{s}_ms_mean"] for s in STAGES)
    assert row["total_ms_mean"] == pytest.approx(stage_sum) and row["fps"] == pytest.approx(1000 / stage_sum)
    assert "mem_rss_peak_growth_mb" in frame.columns
    report = json.loads((out / "video_profile.json").read_text())
    assert report["meta"]["frames"] == 4 and report["meta"]["video_size"] == "400x240"
    assert report["rows"][0]["tracks"] == 2
    assert "| mobilenet |" in (out / "video_profile.md").read_text()

    capture = cv2.VideoCapture(str(annotated))
    drawn = []
    while True:
        ok, bgr = capture.read()
        if not ok:
            break
        drawn.append(bgr)
    assert len(drawn) == 4 and drawn[0].shape == (240, 400, 3)
    source = cv2.VideoCapture(str(face_clip)).read()[1]
    green = lambda img: int(((img[..., 1] > 150) & (img[..., 0] < 80) & (img[..., 2] < 80)).sum())
    assert green(drawn[0]) > 200 and green(source) < 20  # track 0's green box is drawn
    assert not list(annotated.parent.glob(".*"))  # no temporary file left behind


def test_cli_video_without_faces_succeeds(runner, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "blank.mp4", colour_frames(4))
    result = runner.invoke(app, ["profile", "--video", str(clip), *VIDEO_ARGS, "--out", str(tmp_path / "r")])
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "r" / "video_profile.csv").iloc[0]
    assert row["frames"] == 4 and row["frames_without_faces"] == 4


def test_cli_video_workers_and_frame_groups_are_recorded(runner, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "blank.mp4", colour_frames(5))
    args = ["profile", "--video", str(clip), *VIDEO_ARGS, "--workers", "2", "--batch-frames", "2", "--out", str(tmp_path / "r")]
    result = runner.invoke(app, args)
    assert result.exit_code == 0, result.output
    row = pd.read_csv(tmp_path / "r" / "video_profile.csv").iloc[0]
    assert (row["frames"], row["workers"], row["batch_frames"], row["threads"]) == (5, 2, 2, 1)
    meta = json.loads((tmp_path / "r" / "video_profile.json").read_text())["meta"]
    assert "fps = frames / wall seconds" in meta["latency"] and "2 consecutive frame(s)" in meta["stages"]


def test_cli_video_profiles_checkpoints_and_seeded_zoo_models(runner, face_clip: Path, tmp_path: Path) -> None:
    torch.manual_seed(1)
    run = tmp_path / "run"
    save_checkpoint(run / "best.pt", create_model("mobilenet"), model_name="mobilenet", embedding_size=512, config={})
    rows = []
    for out, models in (("a", f"mobilenet,{run}"), ("b", "mobilenet")):
        args = ["profile", "--video", str(face_clip), *VIDEO_ARGS, "--models", models, "--out", str(tmp_path / out)]
        result = runner.invoke(app, args)
        assert result.exit_code == 0, result.output
        rows.append(pd.read_csv(tmp_path / out / "video_profile.csv"))
    both, zoo_only = rows
    assert both["model"].tolist() == ["mobilenet", "mobilenet"]
    assert both["weights"].tolist() == ["untrained", str(run / "best.pt")]
    cos = ["track_cos_consecutive", "track_cos_between"]
    # a bare zoo name is seeded: the same figures in another process run; the checkpoint's weights differ
    assert both.loc[0, cos].tolist() == zoo_only.loc[0, cos].tolist()
    assert both.loc[1, "track_cos_between"] != both.loc[0, "track_cos_between"]


def test_cli_video_refuses_external_models(runner, tmp_path: Path) -> None:
    clip = write_clip(tmp_path / "blank.mp4", colour_frames(2))
    args = ["profile", "--video", str(clip), *VIDEO_ARGS, "--models", "dlib", "--out", str(tmp_path / "o")]
    result = runner.invoke(app, args)
    assert result.exit_code == 2 and "--models dlib: external models" in result.output.replace("\n", "")
    assert not (tmp_path / "o").exists()


def _make_bad(kind: str, tmp_path: Path) -> tuple[Path, str]:
    if kind == "missing":
        return tmp_path / "nope.mp4", "does not exist"
    if kind == "text":
        path = tmp_path / "notes.mp4"
        path.write_text("not a video\n")
        return path, "cannot be read as a video"
    if kind == "image":
        path = tmp_path / "still.png"
        cv2.imwrite(str(path), np.zeros((32, 32, 3), dtype=np.uint8))
        return path, "still image"
    if kind == "folder":
        return tmp_path, "is a folder"
    path = tmp_path / "empty.mp4"  # a container with no frames
    cv2.VideoWriter(str(path), cv2.VideoWriter_fourcc(*"mp4v"), 10, (64, 64)).release()
    return path, "without frames"


@pytest.mark.parametrize("kind", ["missing", "text", "image", "folder", "zero_frames"])
def test_cli_bad_video_is_one_line_exit_2(runner, tmp_path: Path, kind: str) -> None:
    video, message = _make_bad(kind, tmp_path)
    out = tmp_path / "out"
    result = runner.invoke(app, ["profile", "--video", str(video), *VIDEO_ARGS, "--out", str(out)])
    assert result.exit_code == 2
    assert message in result.output and str(video) in result.output.replace("\n", "")
    assert "Traceback" not in result.output and len(result.output.strip().splitlines()) <= 2
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--detector", "yolo"], "'yolo' is not one of 'mtcnn', 'yunet', 'retinaface', 'haar'"),
        (["--models", "r18,resnet9000", "--save-annotated", "o/a.mp4"], "resnet9000"),
        (["--save-annotated", "/proc/x/a.mp4"], "--save-annotated"),
    ],
)
def test_cli_video_bad_options(runner, tmp_path: Path, args: list[str], message: str) -> None:
    clip = write_clip(tmp_path / "blank.mp4", colour_frames(2))
    args = [str(tmp_path / a) if a.endswith(".mp4") and not a.startswith("/") else a for a in args]
    result = runner.invoke(app, ["profile", "--video", str(clip), *VIDEO_ARGS, *args, "--out", str(tmp_path / "o")])
    assert result.exit_code == 2 and message in result.output.replace("\n", "") and "Traceback" not in result.output
    assert not (tmp_path / "o").exists()


def test_cli_video_options_need_video(runner, tmp_path: Path) -> None:
    result = runner.invoke(app, ["profile", "--models", "r18", "--max-frames", "3", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--max-frames only apply with --video" in result.output
    result = runner.invoke(app, ["profile", "--models", "r18", "--workers", "2", "--out", str(tmp_path)])
    assert result.exit_code == 2 and "--workers only apply with --video" in result.output
