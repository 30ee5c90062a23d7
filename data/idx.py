"""Reader for the IDX format of the MNIST files (plain or gzip-compressed)."""

from __future__ import annotations

import gzip
import math
import zlib
from pathlib import Path
from typing import BinaryIO

import numpy as np
import torch

from data.errors import DataError

# Magic numbers: two zero bytes, a type code (0x08 = unsigned byte), the number of dimensions.
IMAGES_MAGIC = 0x00000803
LABELS_MAGIC = 0x00000801


# MNIST's largest file (train images) holds 47,040,016 bytes; no IDX file read here is larger,
# so a header claiming more, or a gzip stream inflating beyond what its header claims, is
# refused before its data is read into memory.
MAX_DATA_BYTES = 1 << 27


def _open(path: Path) -> BinaryIO:
    try:
        return gzip.open(path, "rb") if path.suffix == ".gz" else open(path, "rb")
    except FileNotFoundError:
        raise DataError(f"{path}: file not found") from None
    except OSError as e:
        raise DataError(f"{path}: cannot be read ({e}); download it again") from None


def read_idx(path: Path, *, magic: int) -> torch.Tensor:
    """Read one IDX file of unsigned bytes; returns uint8 [N] (labels) or [N, rows, cols]. The
    header is read first and the data after it only up to the size the header gives."""
    ndim = magic & 0xFF
    header = 4 + 4 * ndim
    try:
        with _open(path) as f:
            head = f.read(header)
            if len(head) < header:
                raise DataError(
                    f"{path}: truncated IDX header ({len(head)} bytes); download it again"
                )
            found = int.from_bytes(head[:4], "big")
            if found != magic:
                raise DataError(
                    f"{path}: wrong magic number 0x{found:08x} (expected 0x{magic:08x}); "
                    "is this the right MNIST file?"
                )
            dims = [int.from_bytes(head[4 + 4 * i : 8 + 4 * i], "big") for i in range(ndim)]
            size = math.prod(dims)  # exact: sizes from a header may overflow numpy's ints
            if size > MAX_DATA_BYTES:
                raise DataError(
                    f"{path}: its header claims shape {tuple(dims)} ({size:,} bytes), larger "
                    "than any MNIST file; is this the right file?"
                )
            data = f.read(size + 1)  # one byte more: data past the claimed size is refused
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as e:
        raise DataError(f"{path}: cannot be read ({e}); download it again") from None
    if len(data) != size:
        how = (
            f"truncated ({header + len(data)} bytes, fewer" if len(data) < size else "padded (more"
        )
        raise DataError(
            f"{path}: {how} than the {header + size} bytes of shape {tuple(dims)}); "
            "download it again"
        )
    array = np.frombuffer(data, dtype=np.uint8).reshape(dims)
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
