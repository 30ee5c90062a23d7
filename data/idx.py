"""Reader for the IDX format of the MNIST files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path

import numpy as np
import torch

from data.errors import DataError

# Magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


def _read_bytes(path: Path) -> bytes:
    try:
        if path.suffix == ".gz":
            with gzip.open(path, "rb") as f:
                return f.read()
        return path.read_bytes()
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: cannot be read ({e}); download it again") from None


def read_idx(path: Path, *, magic: int) -> torch.Tensor:
    """Read one IDX file of unsigned bytes; returns uint8 [N] (labels) or [N, rows, cols]."""
    raw = _read_bytes(path)
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    if len(raw) < header:
        raise DataError(f"{path}: truncated IDX header ({len(raw)} bytes); download it again")
    found = int.from_bytes(raw[:4], "big")
    if found != magic:
        raise DataError(
            f"{path}: wrong magic number 0x{found:08x} (expected 0x{magic:08x}); "
            "is this the right MNIST file?"
        )
    dims = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
    expected = header + math.prod(dims)  # exact: sizes from a header may overflow numpy's ints
    if len(raw) != expected:
        raise DataError(
            f"{path}: truncated or padded IDX data ({len(raw)} bytes, expected {expected} "
            f"for shape {tuple(dims)}); download it again"
        )
    array = np.frombuffer(raw, dtype=np.uint8, offset=header).reshape(dims)
    return torch.from_numpy(array.copy())


def write_idx(path: Path, tensor: torch.Tensor, *, compresslevel: int = 9) -> None:
    """Write a uint8 tensor as an IDX file (gzip when the name ends in .gz), as MNIST's are."""
    array = tensor.to(torch.uint8).numpy()
    header = (0x00000800 | array.ndim).to_bytes(4, "big")
    header += b"".join(d.to_bytes(4, "big") for d in array.shape)
    if path.suffix == ".gz":
        with gzip.open(path, "wb", compresslevel=compresslevel) as f:
            f.write(header + array.tobytes())
    else:
        path.write_bytes(header + array.tobytes())
