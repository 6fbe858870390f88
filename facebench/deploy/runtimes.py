"""ONNX Runtime and OpenVINO behind one torch module: ``DeployedModel``.

A deployed file takes the same normalised NCHW batch a zoo model takes (its input spec
comes from the sidecar, or from the user for a foreign file) and returns (N, E)
embeddings. The runtime's session is made on the first forward, with torch's thread count
at that moment (so ``--threads`` pins both alike) and, on CUDA, ONNX Runtime's CUDA
provider where it is installed; the first forward also checks the shapes and says in one
line what does not fit. Inputs are cast to the file's input type (fp16 files take fp16).

OpenVINO is compiled with ``INFERENCE_PRECISION_HINT=f32``: on CPUs with AMX it would
otherwise run an fp32 file in bf16 and report bf16 speed as fp32. Quantised (QDQ) layers
still run in int8.
"""

from __future__ import annotations

import importlib
from pathlib import Path
from types import ModuleType
from typing import Any

import numpy as np
import torch
from torch import nn

from facebench.choices import RUNTIMES
from facebench.errors import FacebenchError
from facebench.fileio import foreign_file
from facebench.input_spec import ARCFACE, InputSpec

DEPLOYED_SUFFIXES = {".onnx": "onnxruntime", ".xml": "openvino"}  # file suffix -> its natural runtime
EXTRAS = {"onnxruntime": ("onnxruntime", "onnx"), "openvino": ("openvino", "openvino")}  # runtime -> (module, extra)
_ONNX_TYPES = {"tensor(float)": np.float32, "tensor(float16)": np.float16, "tensor(double)": np.float64}


def require_runtime(runtime: str) -> ModuleType:
    """Import ``runtime``'s Python package, or one line saying which facebench extra installs it."""
    module, extra = EXTRAS[runtime]
    try:
        return importlib.import_module(module)
    except ImportError:
        raise FacebenchError(
            f"--runtime {runtime} needs the optional extra: pip install 'facebench[{extra}]'"
        ) from None


def is_deployed_file(path: str | Path) -> bool:
    """True for a file a deployment runtime runs (.onnx, OpenVINO .xml)."""
    return Path(path).suffix.lower() in DEPLOYED_SUFFIXES


def check_runtime(path: Path, runtime: str | None) -> str:
    """The runtime that runs ``path``: ``runtime`` when it can, else the file's natural one; FacebenchError if not."""
    natural = DEPLOYED_SUFFIXES[path.suffix.lower()]
    chosen = runtime or natural
    if chosen not in RUNTIMES:
        raise FacebenchError(f"--runtime {chosen!r} is not one of: {', '.join(RUNTIMES)}")
    if chosen == "torch" or (natural == "openvino" and chosen != "openvino"):
        raise FacebenchError(f"--runtime {chosen} cannot run {path.name}; use --runtime {natural}"
                             + (" or openvino" if natural == "onnxruntime" else ""))  # fmt: skip
    return chosen


def model_files(path: Path) -> list[Path]:
    """The file and its companions on disk: OpenVINO's .bin, ONNX external data (.onnx.data)."""
    companions = [path.with_suffix(".bin")] if path.suffix.lower() == ".xml" else [path.with_name(path.name + ".data")]
    return [path] + [p for p in companions if p.is_file()]


class DeployedModel(nn.Module):
    """An ONNX or OpenVINO file as a module: normalised (N, 3, S, S) float -> (N, E) float32 embeddings."""

    def __init__(self, path: str | Path, runtime: str, input_spec: InputSpec, *, precision: str = "fp32",
                 embedding_size: int | None = None, sidecar: dict[str, Any] | None = None) -> None:  # fmt: skip
        super().__init__()
        self.path = Path(path)
        self.runtime = runtime
        self.input_spec = input_spec
        self.precision = precision  # of the file: fp32, fp16, int8 (as its sidecar says; fp32 for a foreign file)
        self.embedding_size = embedding_size
        self.sidecar = sidecar
        self._library = require_runtime(runtime)
        self._session: Any = None
        self._key: tuple[int, str] | None = None  # (threads, device type) the session was made for
        self._input_dtype: type = np.float32
        self._providers: list[str] = []

    @property
    def size_mb(self) -> float:
        """Bytes on disk of the file and its companions, in MB (1e6 bytes)."""
        return sum(p.stat().st_size for p in model_files(self.path)) / 1e6

    @property
    def version(self) -> str:
        return str(self._library.__version__)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        key = (torch.get_num_threads(), x.device.type)
        if self._session is None or key != self._key:
            self._open(*key)
            self._check_shapes(x)
        batch = x.detach().to("cpu", torch.float32).numpy().astype(self._input_dtype, copy=False)
        out = self._run(np.ascontiguousarray(batch))
        return torch.from_numpy(np.asarray(out, dtype=np.float32).reshape(len(batch), -1)).to(x.device)

    def settings(self) -> dict[str, object]:
        """Recorded beside every result: runtime, its version and providers, the file's precision and input."""
        return {"runtime": self.runtime, "runtime_version": self.version, "precision": self.precision,
                "providers": ",".join(self._providers) or "not opened yet", "input": self.input_spec.describe(),
                "model_file": str(self.path)}  # fmt: skip

    def _open(self, threads: int, device_type: str) -> None:
        if self.runtime == "onnxruntime":
            ort = self._library
            options = ort.SessionOptions()
            options.intra_op_num_threads = threads
            options.inter_op_num_threads = 1
            available = ort.get_available_providers()
            cuda = device_type == "cuda" and "CUDAExecutionProvider" in available
            providers = ["CUDAExecutionProvider", "CPUExecutionProvider"] if cuda else ["CPUExecutionProvider"]
            with foreign_file(self.path, "an ONNX model (an .onnx file an ONNX exporter wrote)"):
                self._session = ort.InferenceSession(str(self.path), options, providers=providers)
            self._providers = self._session.get_providers()
            declared = self._session.get_inputs()
            if len(declared) != 1:
                raise FacebenchError(f"{self.path}: takes {len(declared)} inputs; a face model takes one image batch")
            self._input_name = declared[0].name
            self._input_shape = list(declared[0].shape)
            self._input_dtype = _ONNX_TYPES.get(declared[0].type, np.float32)
        else:
            core = self._library.Core()
            config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32",
                      "PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1}  # fmt: skip
            with foreign_file(self.path, "an OpenVINO IR (an .xml file with its .bin beside it)"):
                compiled = core.compile_model(str(self.path), "CPU", config)
            self._session = compiled.create_infer_request()
            self._providers = ["OpenVINO CPU"]
            port = compiled.inputs[0]
            if len(compiled.inputs) != 1:
                raise FacebenchError(f"{self.path}: takes {len(compiled.inputs)} inputs; a face model takes one")
            shape = port.get_partial_shape()
            self._input_shape = [d.get_length() if d.is_static else None for d in shape]
            element = port.get_element_type().get_type_name()
            self._input_dtype = np.float16 if element == "f16" else np.float32
        self._key = (threads, device_type)

    def _run(self, batch: np.ndarray) -> np.ndarray:
        if self.runtime == "onnxruntime":
            return self._session.run(None, {self._input_name: batch})[0]
        return self._session.infer({0: batch})[0]

    def _check_shapes(self, x: torch.Tensor) -> None:
        """One line when the file's declared input or its output does not fit a batch of this input spec."""
        size = self.input_spec.size
        want = [None, 3, size, size]
        declared = [d if isinstance(d, int) and d > 0 else None for d in self._input_shape]
        if len(declared) != 4 or any(d is not None and w is not None and d != w for d, w in zip(declared, want)):
            fix = f"--input-size {declared[2]}" if len(declared) == 4 and declared[2] else "a face model's file"
            raise FacebenchError(f"{self.path}: takes input of shape {self._input_shape}, not (N, 3, {size}, {size}); "
                                 f"give {fix}")  # fmt: skip
        if declared[0] not in (None, x.shape[0]):
            raise FacebenchError(f"{self.path}: its batch size is fixed at {declared[0]}; export it with a dynamic "
                                 f"batch axis, or profile it at --batch-size {declared[0]}")  # fmt: skip
        probe = np.zeros((x.shape[0], 3, size, size), dtype=self._input_dtype)
        out = np.asarray(self._run(probe))
        if out.ndim < 2 or out.shape[0] != x.shape[0] or int(np.prod(out.shape[2:], dtype=np.int64)) != 1:
            raise FacebenchError(f"{self.path}: its first output has shape {list(out.shape)}; facebench needs "
                                 "(N, E) embeddings as the first output")  # fmt: skip
        if self.embedding_size is not None and out.shape[1] != self.embedding_size:
            raise FacebenchError(f"{self.path}: gives {out.shape[1]}-d embeddings, its sidecar says "
                                 f"{self.embedding_size}; export it again")  # fmt: skip
        self.embedding_size = int(out.shape[1])


def load_deployed(path: str | Path, runtime: str | None = None, input_spec: InputSpec | None = None) -> DeployedModel:
    """The deployed file ``path`` ready to run: runtime checked and importable, input spec from its sidecar
    (or ``input_spec``, else the ArcFace convention, for a foreign file). A sidecar and an explicit
    ``input_spec`` that disagree are refused."""
    from facebench.deploy.sidecar import read_sidecar, sidecar_input_spec, sidecar_path

    path = Path(path)
    if not path.is_file():
        raise FacebenchError(f"{path}: no such file")
    chosen = check_runtime(path, runtime)
    sidecar = read_sidecar(path)
    if sidecar is None:
        return DeployedModel(path, chosen, input_spec or ARCFACE)
    recorded = sidecar_input_spec(sidecar)
    if input_spec is not None and input_spec != recorded:
        raise FacebenchError(f"{path}: its sidecar {sidecar_path(path).name} says the input is {recorded.describe()}, "
                             f"not {input_spec.describe()}; drop the --input-* options")  # fmt: skip
    return DeployedModel(path, chosen, recorded, precision=str(sidecar["precision"]),
                         embedding_size=int(sidecar["embedding_size"]), sidecar=sidecar)  # fmt: skip
