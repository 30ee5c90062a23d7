"""Pairs a user brings as a file: N x 2 x 14 x 14 on the protocol's 0-255 scale, as `.npy`
(read without pickle) or `.pt` (read with torch's weights-only loader); neither runs code."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import torch

from data.errors import DataError

SUFFIXES = (".npy", ".pt")
MAX_BYTES = 1 << 30
SHAPE = (2, 14, 14)
SCALE = (0.0, 255.0)  # the protocol's grey levels


def npy_header(path: Path) -> tuple[tuple[int, ...], np.dtype]:
    """The shape and type an .npy file's header claims, checked against the file's size
    before any array is read (a header may claim far more than the file holds)."""
    with open(path, "rb") as f:
        try:
            version = np.lib.format.read_magic(f)
        except ValueError:
            raise DataError(f"{path} is not an .npy file (an .npz or another format?)") from None
        if version == (1, 0):
            shape, _, dtype = np.lib.format.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = np.lib.format.read_array_header_2_0(f)
        else:
            raise DataError(f"{path}: .npy format version {version} is not read here")
        data = path.stat().st_size - f.tell()
    if dtype.hasobject:
        raise DataError(f"{path} cannot be read as a pair file (it holds Python objects)")
    if len(shape) != 4 or tuple(shape[1:]) != SHAPE:
        raise DataError(f"{path} holds an array of shape {list(shape)}, not N x 2 x 14 x 14")
    if shape[0] * int(np.prod(SHAPE)) * dtype.itemsize > data:
        raise DataError(f"{path}: its header claims {shape[0]:,} pairs, more than the file holds")
    return shape, dtype


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
            npy_header(path)
            array = np.load(path, allow_pickle=False)
            if not np.issubdtype(array.dtype, np.number) or np.iscomplexobj(array):
                raise DataError(f"{path} holds {array.dtype} values, not numbers")
            value: object = torch.from_numpy(np.asarray(array, dtype=np.float32))
        else:
            with warnings.catch_warnings():  # torch's notes on pickle protocols: not the user's
                warnings.simplefilter("ignore")
                value = torch.load(path, map_location="cpu", weights_only=True)
    except DataError:
        raise
    except pickle.UnpicklingError:
        raise DataError(
            f"{path} cannot be read as a pair file: it holds Python objects other than tensors, "
            "which are not loaded (loading them could run code); save one tensor with torch.save"
        ) from None
    except (ValueError, OSError, EOFError, RuntimeError) as e:
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
    if len(pairs) and (pairs.min() < SCALE[0] or pairs.max() > SCALE[1]):
        raise DataError(
            f"{path} holds values from {float(pairs.min()):g} to {float(pairs.max()):g}; pairs "
            f"are grey levels on the protocol's {SCALE[0]:g}-{SCALE[1]:g} scale"
        )
    return pairs
