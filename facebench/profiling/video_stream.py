"""A video's frames through the pipeline in groups, on the calling thread or on several workers.

One pipeline: groups are processed on the calling thread one after another, so a frame's
stage times are its own cost. Several pipelines: each group goes to a free pipeline on a
worker thread of its own while the calling thread decodes the next groups; at most
workers + 1 groups are in flight, and results come back in video order (tracking needs
it). Frames then overlap, so a pass's throughput is frames / wall seconds, not the sum of
its stage times.
"""

from __future__ import annotations

import queue
from collections import deque
from collections.abc import Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

import torch

from facebench.profiling.frames import Frame, read_frames
from facebench.profiling.video_pipeline import FrameResult, VideoPipeline


def stream_results(
    pipelines: Sequence[VideoPipeline],
    video: str | Path,
    every: int = 1,
    max_frames: int | None = None,
    batch_frames: int = 1,
) -> Iterator[tuple[Frame, FrameResult]]:
    """(frame, result) for frames 0, every, 2 * every, ... in order; a frame's buffers stay
    valid until the next item is requested."""
    in_flight = len(pipelines) + 1 if len(pipelines) > 1 else 0
    # the groups in flight and the one being filled each hold batch_frames decoded frames
    frames = read_frames(video, every, max_frames, buffers=batch_frames * (in_flight + 1))
    groups = _groups(frames, batch_frames)
    if len(pipelines) == 1:
        for group in groups:
            yield from zip(group, pipelines[0].process(group), strict=True)
        return
    free: queue.SimpleQueue[VideoPipeline] = queue.SimpleQueue()
    for pipeline in pipelines:
        free.put(pipeline)

    def process(group: list[Frame]) -> list[tuple[Frame, FrameResult]]:
        pipeline = free.get()  # never waits: each running group holds one of len(pipelines) pipelines
        try:
            with torch.inference_mode():
                return list(zip(group, pipeline.process(group), strict=True))
        finally:
            free.put(pipeline)

    pending: deque[Future[list[tuple[Frame, FrameResult]]]] = deque()
    with ThreadPoolExecutor(max_workers=len(pipelines), thread_name_prefix="facebench-video") as pool:
        for group in groups:
            if len(pending) == in_flight:
                yield from pending.popleft().result()
            pending.append(pool.submit(process, group))
        while pending:
            yield from pending.popleft().result()


def _groups(frames: Iterable[Frame], size: int) -> Iterator[list[Frame]]:
    """Consecutive frames in lists of ``size`` (the last may be shorter); reads no frame ahead."""
    group: list[Frame] = []
    for frame in frames:
        group.append(frame)
        if len(group) == size:
            yield group
            group = []
    if group:
        yield group
