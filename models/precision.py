"""The arithmetic a net trains and is scored in: fp32, or bfloat16 autocast where the hardware
runs it fast. Weights, optimizer state and a saved model stay fp32 either way (autocast casts
the convolutions' and matrix products' inputs, not the parameters), so a model trained in bf16
loads and predicts on any machine."""

from __future__ import annotations

import contextlib
from functools import cache
from pathlib import Path

import torch

AUTO_PRECISION = "auto"  # bf16 where the hardware runs it fast, else fp32
PRECISIONS = (AUTO_PRECISION, "fp32", "bf16")
# What a study trains in when no precision is asked for. bf16 is not the default anywhere yet:
# on this project's CPU (AVX2, no native bf16) it is 6-10x slower (benchmarks/loop.py
# --options), and on hardware that runs it natively neither its speed over whole epochs nor
# what a search selects with it has been measured (docs/performance.md).
DEFAULT_PRECISION = "fp32"
# CPU flags of the instructions that make bf16 arithmetic fast (AVX-512 BF16, AMX); without
# them torch emulates bf16 on the CPU, slower than fp32.
FAST_BF16_FLAGS = ("avx512_bf16", "amx_bf16")


@cache
def cpu_flags() -> frozenset[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return frozenset()
    line = next((line for line in text.splitlines() if line.startswith("flags")), "")
    return frozenset(line.partition(":")[2].split())


def fast_bf16(device: torch.device) -> bool:
    """Whether `device` runs bf16 arithmetic natively: a CUDA GPU of compute capability 8.0 or
    newer (Ampere), or a CPU with AVX-512 BF16 or AMX."""
    if device.type == "cuda":
        return torch.cuda.is_bf16_supported(including_emulation=False)
    return any(flag in cpu_flags() for flag in FAST_BF16_FLAGS)


def resolve_precision(name: str, device: torch.device) -> str:
    """auto: bf16 where `device` runs it fast, else fp32; fp32 and bf16 as asked."""
    if name not in PRECISIONS:
        raise ValueError(f"unknown precision {name!r}; choose one of {', '.join(PRECISIONS)}")
    if name == AUTO_PRECISION:
        return "bf16" if fast_bf16(device) else "fp32"
    return name


def autocast(precision: str, device: torch.device) -> contextlib.AbstractContextManager[object]:
    """The forward passes (and the loss) of a net trained or scored in `precision`."""
    if precision == "bf16":
        return torch.autocast(device.type, dtype=torch.bfloat16)
    return contextlib.nullcontext()
