"""MNIST's four IDX files at MNIST's sizes (60,000 training and 10,000 test images), made here
from the embedded digits, for the benchmarks that need `--dataset mnist` without a download.

Each image is one of the embedded real digits under a random affine jitter (rotation up to 15
degrees, shift up to 2 px, zoom 0.9-1.1): training images come from the embedded training
pool, test images from its test pool, so the two stay apart as MNIST's do. The digits look
like MNIST's but repeat (about 20 jittered copies of each), so accuracy on these files runs
higher than on MNIST; they are for cost, not for accuracy.

    python benchmarks/mnist_sized.py FOLDER
"""

from __future__ import annotations

import argparse
import math
from pathlib import Path

import torch
import torch.nn.functional as F

from data.idx import write_idx
from data.sources import mnist5k_images

SIZES = {"train": 60_000, "t10k": 10_000}


def jittered(images: torch.Tensor, n: int, g: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """`n` random picks of uint8 [M, 28, 28] `images`, each under its own affine jitter; returns
    the new images and the index of each one's original."""
    picks = torch.randint(len(images), (n,), generator=g)
    angle = (torch.rand(n, generator=g) * 2 - 1) * math.radians(15)
    zoom = 0.9 + 0.2 * torch.rand(n, generator=g)
    shift = (torch.rand(n, 2, generator=g) * 2 - 1) * (2 / 14)  # 2 px in [-1, 1] coordinates
    cos, sin = torch.cos(angle) / zoom, torch.sin(angle) / zoom
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )
    out = torch.empty(n, 28, 28, dtype=torch.uint8)
    for start in range(0, n, 5000):
        part = slice(start, start + 5000)
        x = images[picks[part]].float().unsqueeze(1)
        grid = F.affine_grid(theta[part], list(x.shape), align_corners=False)
        y = F.grid_sample(x, grid, align_corners=False, padding_mode="zeros")
        out[part] = y.squeeze(1).round().clamp(0, 255).to(torch.uint8)
    return out, picks


def write_mnist_sized(folder: Path, seed: int = 0) -> Path:
    """Write the four files (gzip, MNIST's names) into `folder`; returns it."""
    folder.mkdir(parents=True, exist_ok=True)
    images, labels, test = mnist5k_images()
    g = torch.Generator().manual_seed(seed)
    for prefix, pool in (("train", ~test), ("t10k", test)):
        made, picks = jittered(images[pool], SIZES[prefix], g)
        write_idx(folder / f"{prefix}-images-idx3-ubyte.gz", made, compresslevel=1)
        write_idx(folder / f"{prefix}-labels-idx1-ubyte.gz", labels[pool][picks], compresslevel=1)
    return folder


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("folder", type=Path)
    p.add_argument("--seed", type=int, default=0)
    print(write_mnist_sized(p.parse_args().folder, p.parse_args().seed))


if __name__ == "__main__":
    main()
