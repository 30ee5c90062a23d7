"""Loss composition: pure functions of logits and labels."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def member_losses(
    main: torch.Tensor,  # [K, B, 2] comparison logits of K nets
    digits: torch.Tensor,  # [K, B, 2, 10] digit logits
    target: torch.Tensor,  # [K, B]
    classes: torch.Tensor,  # [K, B, 2]
    alpha: float,
) -> torch.Tensor:
    """Each net's alpha * main + (1 - alpha) / 2 * (aux_1 + aux_2) on its own batch: [K]. Their
    sum has each net's own loss as its gradient (the nets share no weight)."""
    k = main.shape[0]
    main_loss = F.cross_entropy(main.reshape(-1, 2), target.reshape(-1), reduction="none")
    loss = alpha * main_loss.view(k, -1).mean(1)
    if alpha < 1.0:  # the mean over both digits of each pair
        aux = F.cross_entropy(digits.reshape(-1, 10), classes.reshape(-1), reduction="none")
        loss = loss + (1.0 - alpha) * aux.view(k, -1).mean(1)
    return loss


def pair_loss(
    main: torch.Tensor,  # [B, 2] comparison logits
    digits: torch.Tensor,  # [B, 2, 10] digit logits
    target: torch.Tensor,  # [B]
    classes: torch.Tensor,  # [B, 2]
    alpha: float,
) -> torch.Tensor:
    """alpha * main + (1 - alpha) / 2 * (aux_1 + aux_2); alpha = 1 means no auxiliary loss."""
    return member_losses(main[None], digits[None], target[None], classes[None], alpha)[0]
