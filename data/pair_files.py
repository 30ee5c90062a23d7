"""Pairs a user brings as a file: N x 2 x 14 x 14 on the protocol's 0-255 scale, as `.npy`
(read without pickle) or `.pt` (read with torch's weights-only loader); neither runs code."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torch

from data.errors import DataError

SUFFIXES = (".npy", ".pt")
MAX_BYTES = 1 << 30


def read_pairs(path: Path) -> torch.Tensor:
    """The pairs in `path` as float32 [N, 2, 14, 14]."""
    if path.suffix not in SUFFIXES:
        raise DataError(f"{path}: a pair file ends in {' or '.join(SUFFIXES)}")
    if not path.is_file():
        raise DataError(f"{path}: no such pair file")
    if path.stat().st_size > MAX_BYTES:
        raise DataError(f"{path}: larger than {MAX_BYTES >> 20} MB; split it")
    try:
        if path.suffix == ".npy":
            array = np.load(path, allow_pickle=False)
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise DataError(f"{path} holds {array.dtype} values, not numbers")
            value: object = torch.from_numpy(np.asarray(array, dtype=np.float32))
        else:
            value = torch.load(path, map_location="cpu", weights_only=True)
    except DataError:
        raise
    except (ValueError, OSError, EOFError, RuntimeError, pickle.UnpicklingError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        raise DataError(f"{path} cannot be read as a pair file ({first[:200]})") from None
    if not isinstance(value, torch.Tensor):
        raise DataError(f"{path} holds a {type(value).__name__}, not one tensor of pairs")
    if value.dim() != 4 or tuple(value.shape[1:]) != (2, 14, 14):
        raise DataError(f"{path} holds a tensor of shape {list(value.shape)}, not N x 2 x 14 x 14")
    if value.is_complex() or value.dtype == torch.bool:
        raise DataError(f"{path} holds {value.dtype} values, not grey levels")
    pairs = value.float()
    if not torch.isfinite(pairs).all():
        raise DataError(f"{path} holds NaN or infinite values")
    return pairs
