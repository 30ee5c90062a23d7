"""Label-preserving augmentation of digit pairs, on whatever device the batch lives on.

The random draws (`draw`) are apart from their application (`apply`): a packed run draws each
member's numbers from the member's own stream, then transforms every member's batch at once.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F

MAX_ROTATION_DEG = 12.0  # small enough that a 6 stays a 6 and a 9 a 9
MAX_SHIFT_PX = 1.5  # on a 14x14 image
SCALE_RANGE = 0.1  # zoom in [0.9, 1.1]


@dataclass(frozen=True)
class Draws:
    swap: torch.Tensor  # [B] bool: swap the pair's two digits
    affine: torch.Tensor  # [2B, 4] uniform in [-1, 1]: rotation, scale, x and y shift


def draw(batch: int, generator: torch.Generator, device: torch.device) -> Draws:
    """A batch's random numbers, the swaps first, in the order `augment` has always drawn."""
    swap = torch.rand(batch, generator=generator, device=device) < 0.5
    affine = torch.rand(batch * 2, 4, generator=generator, device=device) * 2 - 1
    return Draws(swap, affine)


def concat(draws: list[Draws]) -> Draws:
    return Draws(torch.cat([d.swap for d in draws]), torch.cat([d.affine for d in draws]))


def random_affine(x: torch.Tensor, r: torch.Tensor) -> torch.Tensor:
    """Rotate, scale and shift each digit on its own by `r` ([2B, 4] in [-1, 1]):
    [B, 2, 14, 14] -> [B, 2, 14, 14]."""
    b, two, h, w = x.shape
    n = b * two
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


def apply(
    x: torch.Tensor, classes: torch.Tensor, draws: Draws
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Swap the two digits of the drawn pairs (the target is recomputed from the classes, so
    equal pairs stay 1 and unequal pairs flip), then move each digit: [B, 2, 14, 14]."""
    swap = draws.swap
    x = torch.where(swap[:, None, None, None], x.flip(1), x)
    classes = torch.where(swap[:, None], classes.flip(1), classes)
    target = (classes[:, 0] <= classes[:, 1]).long()
    return random_affine(x, draws.affine), classes, target


def augment(
    x: torch.Tensor, classes: torch.Tensor, generator: torch.Generator
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    return apply(x, classes, draw(x.shape[0], generator, x.device))
