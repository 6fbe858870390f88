"""Static model metrics: parameters, serialised size, MACs and FLOPs at one input.

Two independent operation counters are reported side by side, labelled by unit:
- ``gmacs``: ptflops with its aten backend: multiply-accumulates of convolutions and
  matrix products. insightface's README "FLOPs" are ptflops MACs (ir100 12.1 G, ir50
  6.3 G, ir18 2.6 G, mbf 0.45 G at 112x112); they used ptflops' module backend, which also
  counts BN, activation and pooling element operations: +0.3% for the IResNets, +3% for
  depthwise-heavy mobile nets (mbf 0.452 vs 0.438 here).
- ``gflops``: torch.utils.flop_counter.FlopCounterMode, floating-point operations of the
  same layers (one MAC = 2 FLOPs), so gflops = 2 x gmacs from an independent counter.
"""

from __future__ import annotations

import io
from dataclasses import asdict, dataclass

import torch
from torch import nn

from facebench.input_spec import INPUT_SIZE

BYTES_PER_MB = 1e6
BYTES_PER_MIB = 2**20


@dataclass(frozen=True)
class StaticMetrics:
    """Counts for one model at batch 1, 3x112x112, fp32."""

    params_m: float  # parameters, millions (trainable and frozen)
    size_mb: float  # serialised fp32 state_dict, 1e6 bytes
    size_mib: float  # the same in 2^20 bytes
    gmacs: float  # ptflops (aten) multiply-accumulates of conv/linear/matmul, 1e9
    gflops: float  # FlopCounterMode floating-point operations, 1e9

    def as_dict(self) -> dict[str, float]:
        return asdict(self)


def count_params(model: nn.Module) -> int:
    """All parameters (frozen ones included: they are stored and shipped)."""
    return sum(p.numel() for p in model.parameters())


def state_dict_bytes(model: nn.Module) -> int:
    """Bytes of ``torch.save(model.state_dict())``: what a deployed checkpoint weighs."""
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    return buffer.getbuffer().nbytes


def count_macs(model: nn.Module, input_size: int = INPUT_SIZE) -> int:
    """ptflops (aten backend) multiply-accumulates for one 3 x input_size x input_size image."""
    from ptflops import get_model_complexity_info

    macs, _ = get_model_complexity_info(
        model, (3, input_size, input_size), as_strings=False, print_per_layer_stat=False, verbose=False,
        backend="aten",
    )  # fmt: skip
    return int(macs)


def count_flops(model: nn.Module, input_size: int = INPUT_SIZE) -> int:
    """FlopCounterMode floating-point operations for one 3 x input_size x input_size image."""
    from torch.utils.flop_counter import FlopCounterMode

    device = next(model.parameters()).device
    x = torch.zeros(1, 3, input_size, input_size, device=device)
    with FlopCounterMode(display=False) as counter, torch.inference_mode():
        model(x)
    return int(counter.get_total_flops())


def static_metrics(model: nn.Module) -> StaticMetrics:
    """Params, fp32 size and operation counts of ``model`` (put in eval mode, on CPU, fp32)."""
    model = model.float().eval()
    size = state_dict_bytes(model)
    return StaticMetrics(
        params_m=count_params(model) / 1e6,
        size_mb=size / BYTES_PER_MB,
        size_mib=size / BYTES_PER_MIB,
        gmacs=count_macs(model) / 1e9,
        gflops=count_flops(model) / 1e9,
    )
