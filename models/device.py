from __future__ import annotations

import torch

DEVICES = ("auto", "cpu", "cuda")


class DeviceError(Exception):
    """The device asked for is not here; the message says what to use instead."""


def resolve_device(name: str) -> torch.device:
    """auto picks CUDA when present, else the CPU; cuda without a GPU is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name == "cuda" and not torch.cuda.is_available():
        raise DeviceError("--device cuda: no CUDA device is available here; use --device cpu")
    if name not in DEVICES:
        raise DeviceError(f"unknown device {name!r}; choose one of {', '.join(DEVICES)}")
    return torch.device(name)
