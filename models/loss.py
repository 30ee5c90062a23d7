"""Loss composition: a pure function of logits and labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def pair_loss(
    main: torch.Tensor,  # [B, 2] comparison logits
    digits: torch.Tensor,  # [B, 2, 10] digit logits
    target: torch.Tensor,  # [B]
    classes: torch.Tensor,  # [B, 2]
    alpha: float,
) -> torch.Tensor:
    """alpha * main + (1 - alpha) / 2 * (aux_1 + aux_2); alpha = 1 means no auxiliary loss."""
    loss = alpha * F.cross_entropy(main, target)
    if alpha < 1.0:
        aux = F.cross_entropy(digits.reshape(-1, 10), classes.reshape(-1))  # mean of both digits
        loss = loss + (1.0 - alpha) * aux
    return loss
