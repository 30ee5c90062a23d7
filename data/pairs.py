"""Digit pairs: the images, the comparison target and the two digit classes."""

from __future__ import annotations

from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class PairSet:
    input: torch.Tensor  # [N, 2, 14, 14] float32, 0-255 (normalization is the trainer's)
    target: torch.Tensor  # [N] int64, 1 if the first digit <= the second
    classes: torch.Tensor  # [N, 2] int64, the two digit classes
    image_ids: torch.Tensor  # [N, 2] int64, indices of the images in their pool

    def __len__(self) -> int:
        return len(self.target)


def comparison_target(classes: torch.Tensor) -> torch.Tensor:
    """[N, 2] digit classes -> [N] int64 target; equal digits count as 1."""
    return (classes[:, 0] <= classes[:, 1]).long()


def generate_pairs(images: torch.Tensor, labels: torch.Tensor, ids: torch.Tensor) -> PairSet:
    """Build pairs from image indices [N, 2] into a pool of images [M, 14, 14] and labels [M]."""
    classes = labels[ids]
    return PairSet(images[ids], comparison_target(classes), classes, ids)
