"""Label-preserving augmentation of digit pairs, on whatever device the batch lives on."""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 12.0  # small enough that a 6 stays a 6 and a 9 a 9
MAX_SHIFT_PX = 1.5  # on a 14x14 image
SCALE_RANGE = 0.1  # zoom in [0.9, 1.1]


def random_affine(x: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """Rotate, scale and shift each digit on its own: [B, 2, 14, 14] -> [B, 2, 14, 14]."""
    b, two, h, w = x.shape
    n = b * two
    r = torch.rand(n, 4, generator=generator, device=x.device) * 2 - 1  # uniform in [-1, 1]
    angle = r[:, 0] * math.radians(MAX_ROTATION_DEG)
    scale = 1.0 + r[:, 1] * SCALE_RANGE
    cos, sin = torch.cos(angle) / scale, torch.sin(angle) / scale
    shift = r[:, 2:] * (2 * MAX_SHIFT_PX / w)  # normalized coordinates span 2 over w pixels
    theta = torch.stack(
        [torch.stack([cos, -sin, shift[:, 0]], 1), torch.stack([sin, cos, shift[:, 1]], 1)], 1
    )  # [n, 2, 3]
    grid = F.affine_grid(theta, [n, 1, h, w], align_corners=False)
    # Border padding repeats the background value, whatever the normalization.
    out = F.grid_sample(x.reshape(n, 1, h, w), grid, padding_mode="border", align_corners=False)
    return out.view(b, two, h, w)


def random_swap(
    x: torch.Tensor, classes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Swap the two digits of about half the pairs; the target is recomputed from the classes,
    so equal pairs stay 1 and unequal pairs flip."""
    swap = torch.rand(x.shape[0], generator=generator, device=x.device) < 0.5
    x = torch.where(swap[:, None, None, None], x.flip(1), x)
    classes = torch.where(swap[:, None], classes.flip(1), classes)
    target = (classes[:, 0] <= classes[:, 1]).long()
    return x, classes, target


def augment(
    x: torch.Tensor, classes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    x, classes, target = random_swap(x, classes, generator)
    return random_affine(x, generator), classes, target
