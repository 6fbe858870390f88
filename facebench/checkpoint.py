"""The checkpoint format shared by training, verification and distillation.

A checkpoint is a ``torch.save``d dict::

    {"format": "facebench-checkpoint", "format_version": 1,
     "model": "r18", "embedding_size": 512, "state_dict": {...},
     "config": {...},          # the resolved run config (JSON-ready)
     "provenance": {...},      # facebench/torch versions, git commit, time (facebench.provenance)
     "extra": {...}}           # optional: training state (optimizer, epoch, ...)

It holds only tensors and plain Python values, so it loads with ``weights_only=True``.
Saving is atomic (temporary file, fsync, then rename). What a ``--model`` or ``--teacher``
argument names, and how a checkpoint becomes a model, is ``facebench.modelspec``'s.
"""

from __future__ import annotations

import json
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import nn

from facebench.errors import FacebenchError
from facebench.fileio import atomic_path
from facebench.provenance import environment

CHECKPOINT_FORMAT = "facebench-checkpoint"
CHECKPOINT_VERSION = 1
MODEL_KEYS = ("model", "embedding_size", "state_dict")  # what building the model reads


def save_checkpoint(
    path: str | Path,
    model: nn.Module,
    *,
    model_name: str,
    embedding_size: int,
    config: Mapping[str, Any],
    extra: Mapping[str, Any] | None = None,
) -> Path:
    """Write ``model``'s weights with its name, size, config and provenance to ``path`` atomically."""
    checkpoint = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_VERSION,
        "model": model_name,
        "embedding_size": int(embedding_size),
        "state_dict": {k: v.detach().cpu() for k, v in model.state_dict().items()},
        "config": _plain(config),
        "provenance": _plain(environment()),
        "extra": dict(extra or {}),
    }
    size = sum(_tensor_bytes(checkpoint[k]) for k in ("state_dict", "extra"))
    with atomic_path(path, durable=True, size_hint=size) as tmp:  # hours of training: fsynced, not only renamed
        torch.save(checkpoint, tmp)
    return Path(path)


def _tensor_bytes(value: Any) -> int:
    """Bytes of the tensors in ``value`` (nested dicts, lists): about what torch.save writes of it."""
    if isinstance(value, torch.Tensor):
        return value.numel() * value.element_size()
    if isinstance(value, Mapping):
        return sum(_tensor_bytes(v) for v in value.values())
    if isinstance(value, (list, tuple)):
        return sum(_tensor_bytes(v) for v in value)
    return 0


def _plain(data: Mapping[str, Any]) -> dict[str, Any]:
    """JSON round trip: plain dicts, lists, strings and numbers that ``weights_only`` loading accepts."""
    return json.loads(json.dumps(data, default=str))


def _torch_load(path: Path, what: str) -> Any:
    """``torch.load`` with ``weights_only=True`` onto the CPU; any unreadable or unsafe file -> FacebenchError."""
    if not _is_torch_file(path):
        raise FacebenchError(f"{path}: unreadable {what} (not a file torch.save writes: neither a zip archive nor "
                             "a pickle); give a .pt file that torch.save wrote")
    try:
        return torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises many types for a bad file (pickle, zip, EOF, ...)
        message = str(exc).strip()
        if "Weights only load failed" in message:
            reason = "it holds Python objects besides tensors and plain values, refused for safety"
        else:
            reason = (message.splitlines() or [type(exc).__name__])[0]
        raise FacebenchError(f"{path}: unreadable {what} ({reason}); re-save it or pick another file") from None



def _is_torch_file(path: Path) -> bool:
    """Whether ``path`` starts like a ``torch.save`` file: a zip archive, or a legacy pickle (opcode 0x80)."""
    if zipfile.is_zipfile(path):
        return True
    with open(path, "rb") as file:
        return file.read(1) == b"\x80"


def load_state_dict_file(path: str | Path) -> dict[str, torch.Tensor]:
    """The weights in ``path``: a plain state dict (name -> tensor, as published weights come) or a facebench
    checkpoint's ``state_dict``; anything else -> FacebenchError."""
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"--weights {path}: no such file")
    data = _torch_load(path, "weights file")
    if isinstance(data, dict) and data.get("format") == CHECKPOINT_FORMAT:
        data = data.get("state_dict")
    if not isinstance(data, dict) or not data or not all(isinstance(v, torch.Tensor) for v in data.values()):
        raise FacebenchError(f"--weights {path}: not a state dict (a mapping of names to tensors)")
    return data


def load_checkpoint(path: str | Path) -> dict[str, Any]:
    """Read and validate a checkpoint onto the CPU; any unreadable or foreign file -> FacebenchError."""
    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"checkpoint {path} not found; pass a run folder, a .pt file or a zoo model name")
    checkpoint = _torch_load(path, "checkpoint")
    if not isinstance(checkpoint, dict) or checkpoint.get("format") != CHECKPOINT_FORMAT:
        raise FacebenchError(
            f"{path}: not a facebench checkpoint (no format={CHECKPOINT_FORMAT!r}); "
            "write checkpoints with facebench.checkpoint.save_checkpoint"
        )
    if checkpoint.get("format_version", 0) > CHECKPOINT_VERSION:
        raise FacebenchError(
            f"{path}: checkpoint format version {checkpoint['format_version']} is newer than this facebench "
            f"reads ({CHECKPOINT_VERSION}); upgrade facebench"
        )
    missing = [k for k in MODEL_KEYS if k not in checkpoint]
    if missing:
        raise FacebenchError(f"{path}: checkpoint lacks {', '.join(missing)}; it is incomplete")
    return checkpoint
