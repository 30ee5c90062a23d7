"""A pair file we cannot use is refused in one line, before anything large is read."""

from __future__ import annotations

import zipfile
from pathlib import Path

import numpy as np
import pytest
import torch

from data.errors import DataError
from data.pair_files import read_pairs


def lying_header(path: Path, pairs: int) -> Path:
    """A small .npy file whose header claims `pairs` pairs."""
    header = {"descr": "<f4", "fortran_order": False, "shape": (pairs, 2, 14, 14)}
    with open(path, "wb") as f:
        np.lib.format.write_array_header_1_0(f, header)
        f.write(b"\0" * 16)
    return path


def test_a_header_claiming_more_than_the_file_holds_is_refused(tmp_path: Path) -> None:
    path = lying_header(tmp_path / "p.npy", 10**9)
    assert path.stat().st_size < 256
    with pytest.raises(DataError, match="claims 1,000,000,000 pairs, more than the file holds"):
        read_pairs(path)


def test_an_npz_named_npy_is_refused(tmp_path: Path) -> None:
    np.savez(tmp_path / "p.npz", pairs=np.zeros((1, 2, 14, 14), np.float32))
    path = tmp_path / "p.npy"
    (tmp_path / "p.npz").rename(path)
    assert zipfile.is_zipfile(path)
    with pytest.raises(DataError, match=r"not an \.npy file"):
        read_pairs(path)


@pytest.mark.parametrize(
    ("values", "dtype"),
    [(1e6, np.float32), (-3.0, np.float32), (65535, np.uint16), (300, np.int64)],
)
def test_values_off_the_0_255_scale_are_refused(tmp_path: Path, values: float, dtype) -> None:
    array = np.full((2, 2, 14, 14), 10, dtype=dtype)
    array[1, 0, 3, 3] = values
    np.save(tmp_path / "p.npy", array)
    torch.save(torch.from_numpy(array.astype(np.float32)), tmp_path / "p.pt")
    for name in ("p.npy", "p.pt"):
        with pytest.raises(DataError, match="grey levels on the protocol's 0-255 scale"):
            read_pairs(tmp_path / name)


def test_pairs_on_the_scale_are_read(tmp_path: Path) -> None:
    array = np.linspace(0, 255, 3 * 2 * 14 * 14).reshape(3, 2, 14, 14).astype(np.uint8)
    np.save(tmp_path / "p.npy", array)
    pairs = read_pairs(tmp_path / "p.npy")
    assert pairs.dtype == torch.float32 and pairs.shape == (3, 2, 14, 14)
    assert torch.equal(pairs, torch.from_numpy(array).float())
