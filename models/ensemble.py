"""Several nets of one configuration that predict together: the mean of their posteriors."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from models.nets import Siamese, digits_comparison

TINY = 1e-12  # keeps the log of a mean posterior finite


class Ensemble(nn.Module):
    """K trained nets of one configuration. The digit posteriors are averaged; a digits head
    computes P(first <= second) from the averaged ones, a learned head's comparison posteriors
    are averaged as well. Outputs are the logs of the means, so they read as logits
    (softmax gives the mean back) wherever a single net's outputs are read."""

    def __init__(self, members: Sequence[nn.Module]) -> None:
        super().__init__()
        self.members = nn.ModuleList(members)
        self.config = members[0].config

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        outputs = [member(x) for member in self.members]
        digits = mean_log_posterior([d for _, d in outputs])
        if self.config.head == "digits":
            return digits_comparison(digits), digits
        return mean_log_posterior([main for main, _ in outputs]), digits


def mean_log_posterior(logits: Sequence[torch.Tensor]) -> torch.Tensor:
    mean = torch.stack([x.float().softmax(-1) for x in logits]).mean(0)
    return mean.clamp_min(TINY).log()


def reads_digits_alone(model: nn.Module) -> bool:
    """Whether the comparison is a function of each digit's own posterior: a siamese net, or an
    ensemble of them, comparing its digit predictions (the digits head). Its accuracy on any
    pairing of a set of images then follows from one pass over the images."""
    if isinstance(model, Ensemble):
        model = model.members[0]
    return isinstance(model, Siamese) and model.head is None
