from __future__ import annotations

import gzip
from pathlib import Path

import pytest
import torch

from data import DataError, load_source, make_splits
from data.fetch import cache_dir
from data.idx import IMAGES_MAGIC, read_idx
from tests.helpers import write_idx, write_mnist


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("layout", ["plain", "torchvision"])
def test_reads_idx_files_in_both_layouts(tmp_path: Path, gz: bool, layout: str) -> None:
    folder = tmp_path if layout == "plain" else tmp_path / "MNIST" / "raw"
    write_mnist(folder, gz=gz)
    source = load_source("mnist", tmp_path)
    assert source.train_images.shape == (60, 14, 14)
    assert source.test_images.shape == (40, 14, 14)
    assert source.train_labels.tolist() == [i % 10 for i in range(60)]
    raw = read_idx(folder / f"train-images-idx3-ubyte{'.gz' if gz else ''}", magic=IMAGES_MAGIC)
    pooled = raw[0].float().view(14, 2, 14, 2).mean(dim=(1, 3))  # 2x2 average pooling by hand
    assert torch.allclose(source.train_images[0], pooled)


def test_full_mnist_test_pairs_come_from_the_test_files(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    source = load_source("mnist", tmp_path)
    s = make_splits(source, seed=0, n_train=20, n_val=10, n_test=20)
    assert s.test is not None
    assert torch.equal(s.test.input, source.test_images[s.test.image_ids])


def test_missing_files_offline_leave_nothing_behind(tmp_path: Path) -> None:
    # The conftest points the mirrors at a closed local port: every fetch fails.
    with pytest.raises(DataError, match=f"offline, put .* in {tmp_path / 'new' / 'mnist'}"):
        load_source("mnist", tmp_path / "new" / "mnist")
    with pytest.raises(DataError, match=r"cannot fetch train-images-idx3-ubyte\.gz"):
        load_source("mnist", tmp_path)
    assert list(tmp_path.iterdir()) == []
    with pytest.raises(DataError, match=f"in {cache_dir()}"):
        load_source("mnist", None)
    assert not cache_dir().exists()


def test_wrong_magic(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "train-images-idx3-ubyte"
    path.write_bytes(b"\x00\x00\x08\x01" + path.read_bytes()[4:])
    with pytest.raises(DataError, match="wrong magic"):
        load_source("mnist", tmp_path)


@pytest.mark.parametrize("gz", [False, True])
def test_truncated_file(tmp_path: Path, gz: bool) -> None:
    write_mnist(tmp_path, gz=False)
    path = tmp_path / "t10k-images-idx3-ubyte"
    data = path.read_bytes()[:-100]
    path.unlink()
    if gz:
        with gzip.open(tmp_path / "t10k-images-idx3-ubyte.gz", "wb") as f:
            f.write(data)
    else:
        path.write_bytes(data)
    with pytest.raises(DataError, match="truncated"):
        load_source("mnist", tmp_path)


def test_corrupt_gzip(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=True)
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    path.write_bytes(path.read_bytes()[:20])
    with pytest.raises(DataError, match="cannot be read"):
        load_source("mnist", tmp_path)


def test_count_mismatch(tmp_path: Path) -> None:
    write_mnist(tmp_path, gz=False)
    write_idx(tmp_path / "train-labels-idx1-ubyte", torch.zeros(59, dtype=torch.uint8))
    with pytest.raises(DataError, match="60 images but 59 labels"):
        load_source("mnist", tmp_path)
