"""The two image sources: the embedded 5000-image MNIST subset and the full MNIST IDX files.

A source is two disjoint image pools, 14x14 float 0-255 as in the reference protocol:
a train pool (training and validation pairs are drawn from it) and a test pool (test pairs,
read only by the final evaluation).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch
import torch.nn.functional as F

from data.errors import DataError
from data.fetch import CACHE_VARIABLE, cache_dir, fetch
from data.idx import IMAGES_MAGIC, LABELS_MAGIC, read_idx

DATASETS = ("mnist5k", "mnist")

# The embedded subset has no train/test division of its own; a fixed, stratified one is made
# with this seed so that test images never reach a search (300 + 200 images per class).
MNIST5K_SPLIT_SEED = 5000
MNIST5K_TEST_PER_CLASS = 200
EMBEDDED = Path(__file__).parent / "mnist5k"
STEMS = (
    "train-images-idx3-ubyte",
    "train-labels-idx1-ubyte",
    "t10k-images-idx3-ubyte",
    "t10k-labels-idx1-ubyte",
)


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


def mnist5k_images() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """The embedded 5000 images as stored (uint8 [5000, 28, 28]), their labels, and the mask of
    the fixed, stratified test pool (seed MNIST5K_SPLIT_SEED, 200 per class)."""
    try:
        images = read_idx(EMBEDDED / "images-idx3-ubyte.gz", magic=IMAGES_MAGIC)
        labels = read_idx(EMBEDDED / "labels-idx1-ubyte.gz", magic=LABELS_MAGIC).long()
    except DataError as e:
        raise DataError(f"the embedded dataset is damaged ({e}); reinstall the package") from None

    g = torch.Generator().manual_seed(MNIST5K_SPLIT_SEED)
    test = torch.zeros(len(labels), dtype=torch.bool)
    for digit in range(10):
        members = (labels == digit).nonzero().squeeze(1)
        chosen = members[torch.randperm(len(members), generator=g)[:MNIST5K_TEST_PER_CLASS]]
        test[chosen] = True
    return images, labels, test


def load_mnist5k() -> Source:
    """The 5000 real MNIST images (500 per class) shipped in data/mnist5k; no network."""
    images, labels, test = mnist5k_images()
    pooled = downsample(images)
    return Source("mnist5k", pooled[~test], labels[~test], pooled[test], labels[test])


def _find(data_dir: Path, stem: str) -> Path | None:
    for folder in (data_dir, data_dir / "MNIST" / "raw"):
        for name in (stem, stem + ".gz"):
            if (folder / name).is_file():
                return folder / name
    return None


def _load_idx_pair(data_dir: Path, prefix: str) -> tuple[torch.Tensor, torch.Tensor]:
    images = read_idx(_require(data_dir, f"{prefix}-images-idx3-ubyte"), magic=IMAGES_MAGIC)
    labels = read_idx(_require(data_dir, f"{prefix}-labels-idx1-ubyte"), magic=LABELS_MAGIC)
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


def _require(data_dir: Path, stem: str) -> Path:
    found = _find(data_dir, stem)
    if found is None:
        raise DataError(f"{stem}[.gz] not found in {data_dir}; put the four MNIST IDX files there")
    return found


def load_mnist(data_dir: Path | None = None) -> Source:
    """Full MNIST from the standard IDX files in `data_dir` (the cache folder by default),
    fetched there first where missing: MNIST-train is the train pool, MNIST-test the test."""
    given = data_dir is not None
    data_dir = cache_dir() if data_dir is None else data_dir
    if data_dir.exists() and not data_dir.is_dir():
        named = f"--data-dir {data_dir}" if given else f"{CACHE_VARIABLE}={data_dir}"
        raise DataError(f"{named} is a file; point it at the folder of the IDX files")
    missing = [stem for stem in STEMS if _find(data_dir, stem) is None]
    if missing:
        fetch(data_dir, [stem + ".gz" for stem in missing])
    train_images, train_labels = _load_idx_pair(data_dir, "train")
    test_images, test_labels = _load_idx_pair(data_dir, "t10k")
    return Source("mnist", train_images, train_labels, test_images, test_labels)


def load_source(name: str, data_dir: Path | None = None) -> Source:
    if name == "mnist5k":
        return load_mnist5k()
    if name == "mnist":
        return load_mnist(data_dir)
    raise DataError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}")
