"""Scoring a trained net, an ensemble or a pack's members on a pair set: comparison accuracy,
digit accuracy and, for nets that read each digit alone, accuracy over all ordered pairs."""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from data import PairSet
from models.config import Config
from models.ensemble import reads_digits_alone
from models.metrics import all_pairs_accuracy
from models.precision import autocast

EVAL_BATCH = 250


@dataclass(frozen=True)
class Tensors:
    """A pair set normalized and resident on the device."""

    x: torch.Tensor  # [N, 2, 14, 14]
    target: torch.Tensor
    classes: torch.Tensor

    @classmethod
    def of(cls, pairs: PairSet, mean: float, std: float, device: torch.device) -> Tensors:
        x = ((pairs.input - mean) / std).to(device)
        return cls(x, pairs.target.to(device), pairs.classes.to(device))

    def __len__(self) -> int:
        return len(self.target)


@dataclass(frozen=True)
class Scores:
    comparison: float  # on the pairs as drawn
    digits: float
    all_pairs: float | None


def uses_channels_last(config: Config) -> bool:
    # channels_last measured faster for the conv families on CPU; an MLP has no conv to help.
    return config.family != "mlp"


def digits_alone(config: Config) -> bool:
    """Whether a net of `config` compares its two digit predictions (see reads_digits_alone)."""
    return config.family == "siamese" and config.head == "digits"


def score(
    data: Tensors,
    main: torch.Tensor,  # [N, 2] comparison logits (or log posteriors) of the set's pairs
    digits: torch.Tensor,  # [N, 2, 10] digit logits
    positions: tuple[torch.Tensor, torch.Tensor] | None = None,
) -> Scores:
    """Scores from a model's outputs on every pair of `data`; with `positions` (each image's
    digit posteriors in the first and in the second position, [2N, 10] each, in the order of
    classes.reshape(-1)), also the accuracy over every ordered pair of the set's images."""
    n = len(data)
    correct = int((main.argmax(1) == data.target).sum())
    digits_correct = int((digits.argmax(2) == data.classes).sum())
    every = None
    if positions is not None:
        every = all_pairs_accuracy(*positions, data.classes.reshape(-1))
    return Scores(correct / n, digits_correct / (2 * n), every)


def both_positions(
    model: nn.Module, x: torch.Tensor, digits: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """The digit posteriors of a batch's 2B images in the first and in the second position,
    in the order of classes.reshape(-1), from the digit logits [B, 2, 10] of its forward pass.
    With weight sharing both positions are the same branch; without, the pairs are read again
    swapped, so that each branch sees every image."""
    p = digits.float().softmax(2)
    if model.config.weight_sharing:
        return p.reshape(-1, 10), p.reshape(-1, 10)
    q = model(x.flip(1))[1].float().softmax(2)  # q[:, 0]: the second images by the first branch
    first = torch.stack([p[:, 0], q[:, 0]], 1)  # [B, 2, 10], each pair's two images in order
    second = torch.stack([q[:, 1], p[:, 1]], 1)
    return first.reshape(-1, 10), second.reshape(-1, 10)


@torch.inference_mode()
def evaluate(
    model: nn.Module,
    data: Tensors,
    channels_last: bool = False,
    *,
    all_pairs: bool = False,
    precision: str = "fp32",
) -> Scores:
    """Comparison and digit accuracy of one net or an Ensemble in eval mode, in batches of
    EVAL_BATCH; with `all_pairs`, for a model that reads digits alone, also the accuracy over
    every ordered pair of the set's images."""
    model.eval()
    every = all_pairs and reads_digits_alone(model)
    mains, digit_logits, posteriors = [], [], []
    for start in range(0, len(data), EVAL_BATCH):
        x = data.x[start : start + EVAL_BATCH]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(precision, x.device):
            main, digits = model(x)
            if every:
                posteriors.append(both_positions(model, x, digits))
        mains.append(main.float())
        digit_logits.append(digits.float())
    positions = None
    if every:
        first, second = (torch.cat(p) for p in zip(*posteriors, strict=True))
        positions = (first, second)
    return score(data, torch.cat(mains), torch.cat(digit_logits), positions)
