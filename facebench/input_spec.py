"""What a model expects as input: a square RGB or BGR crop, normalised per channel.

Every zoo model so far takes the ArcFace convention, 112x112 RGB, (x - 127.5) / 127.5;
pretrained weights may come with another (the pretrained MobileFaceNet was trained on
ImageNet statistics), and a foreign ONNX file with any. An ``InputSpec`` says which, so
data readers, verification, profiling and export build their tensors from one
definition. Means and stds are in pixel units (0-255), per channel in RGB order.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch

INPUT_SIZE = 112  # pixels, square; the ArcFace crop every aligner produces
PIXEL_MEAN = 0.5  # the ArcFace convention after scaling to [0, 1]
PIXEL_STD = 0.5


@dataclass(frozen=True)
class InputSpec:
    """Input size (pixels, square), channel order and per-channel normalisation (pixel units, RGB order)."""

    size: int = INPUT_SIZE
    mean: tuple[float, float, float] = (127.5, 127.5, 127.5)
    std: tuple[float, float, float] = (127.5, 127.5, 127.5)
    bgr: bool = False  # the network's first channel is blue

    def __post_init__(self) -> None:
        if self.size < 16:
            raise ValueError(f"input size {self.size} is below 16 pixels")
        if len(self.mean) != 3 or len(self.std) != 3 or min(self.std) <= 0:
            raise ValueError(f"input mean and std need 3 values each, std > 0; got {self.mean}, {self.std}")

    def describe(self) -> str:
        """One line for labels and logs: '112x112 RGB, mean 127.5, std 127.5'."""

        def values(v: tuple[float, float, float]) -> str:
            return f"{v[0]:g}" if len(set(v)) == 1 else "/".join(f"{x:g}" for x in v)

        return f"{self.size}x{self.size} {'BGR' if self.bgr else 'RGB'}, mean {values(self.mean)}, std {values(self.std)}"

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (sidecars, run metadata)."""
        return {**asdict(self), "mean": list(self.mean), "std": list(self.std)}

    @classmethod
    def from_dict(cls, fields: dict[str, Any]) -> InputSpec:
        """The spec a ``to_dict`` wrote (KeyError/ValueError/TypeError on a malformed one)."""
        return cls(int(fields["size"]), _triple(fields["mean"]), _triple(fields["std"]), bool(fields["bgr"]))

    def to_tensor(self, images: np.ndarray) -> torch.Tensor:
        """uint8 RGB image(s), HWC or NHWC (any square size), -> float32 CHW or NCHW in this spec."""
        if images.dtype != np.uint8:
            raise TypeError(f"expected uint8 images, got {images.dtype}")
        if images.shape[-3] != self.size:
            images = _resize(images, self.size)
        # numpy, not torch: per-image torch ops dispatch to the intra-op thread pool, which on a
        # busy machine made one 112x112 image cost ~40 ms instead of ~0.15 ms
        mean = np.asarray(self.mean, dtype=np.float32)
        inv_std = np.float32(1.0) / np.asarray(self.std, dtype=np.float32)
        scaled = (images.astype(np.float32) - mean) * inv_std
        if self.bgr:
            scaled = scaled[..., ::-1]
        axes = (2, 0, 1) if images.ndim == 3 else (0, 3, 1, 2)
        return torch.from_numpy(np.ascontiguousarray(scaled.transpose(axes)))

    def convert(self, x: torch.Tensor, source: InputSpec) -> torch.Tensor:
        """A NCHW batch normalised by ``source`` (same size) renormalised to this spec: a per-channel affine map."""
        if source == self:
            return x
        if source.size != self.size:
            raise ValueError(f"cannot convert a {source.size}px input to {self.size}px by normalisation alone")
        pixels = x * _column(source.std, source.bgr, x) + _column(source.mean, source.bgr, x)
        if source.bgr != self.bgr:
            pixels = pixels.flip(1)
        return (pixels - _column(self.mean, self.bgr, x)) / _column(self.std, self.bgr, x)


ARCFACE = InputSpec()  # insightface's convention; facebench's zoo models are trained with it
IMAGENET = InputSpec(mean=(123.675, 116.28, 103.53), std=(58.395, 57.12, 57.375))  # torchvision Normalize x 255


def _triple(value: Any) -> tuple[float, float, float]:
    values = [float(v) for v in (value if isinstance(value, (list, tuple)) else [value] * 3)]
    if len(values) != 3:
        raise ValueError(f"need 1 or 3 values, got {len(values)}")
    return values[0], values[1], values[2]


def _column(values: tuple[float, float, float], bgr: bool, like: torch.Tensor) -> torch.Tensor:
    """Per-channel constants in the network's channel order, shaped (1, 3, 1, 1) like ``like``."""
    ordered = values[::-1] if bgr else values
    return torch.tensor(ordered, dtype=like.dtype, device=like.device).view(1, 3, 1, 1)


def _resize(images: np.ndarray, size: int) -> np.ndarray:
    import cv2

    if images.ndim == 3:
        return cv2.resize(images, (size, size), interpolation=cv2.INTER_LINEAR)
    return np.stack([cv2.resize(image, (size, size), interpolation=cv2.INTER_LINEAR) for image in images])


def to_model_input(images: np.ndarray, spec: InputSpec = ARCFACE) -> torch.Tensor:
    """uint8 RGB image(s), HWC or NHWC, -> float32 tensor CHW or NCHW normalised by ``spec``."""
    return spec.to_tensor(images)


def random_input(batch_size: int = 1, *, seed: int = 0, size: int = INPUT_SIZE) -> torch.Tensor:
    """A deterministic batch in the ArcFace input range [-1, 1], for shape checks and timing."""
    generator = torch.Generator().manual_seed(seed)
    return torch.rand(batch_size, 3, size, size, generator=generator) * 2 - 1


def model_input_spec(model: object) -> InputSpec:
    """The input spec a model declares (attribute ``input_spec``), else the ArcFace convention."""
    spec = getattr(model, "input_spec", ARCFACE)
    return spec if isinstance(spec, InputSpec) else ARCFACE
