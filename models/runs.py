"""What a training run takes and gives, whether it trains alone or packed with others."""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from data import PairSet
from models.config import Config
from models.nets import build_model
from models.scoring import Scores


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class Run:
    """One training run of a configuration: its data, its normalization and its seed. It
    trains config.ensemble nets, net j from member_seed(seed, j)."""

    train_pairs: PairSet
    eval_pairs: Mapping[str, PairSet]
    mean: float
    std: float
    seed: int


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches
    accuracy: dict[str, float]  # comparison accuracy on each evaluated set's pairs
    seconds: float  # training and evaluation time of this epoch
    digits: dict[str, float] = field(default_factory=dict)  # digit accuracy on each set
    # Comparison accuracy over all ordered pairs of each set's images, where it was asked for
    # and the model reads each digit on its own (see models.scoring.evaluate).
    all_pairs: dict[str, float] = field(default_factory=dict)


@dataclass
class TrainResult:
    history: list[EpochStats] = field(default_factory=list)
    train_accuracy: float = math.nan  # clean (eval-mode) accuracy on the training pairs at the end
    # With `first_net`, an ensemble's first net scored on its own beside the ensemble: one net
    # of the configuration, trained on the run's data from the run's seed, at no extra training.
    first_net: TrainResult | None = None
    # The trained nets (config.ensemble of them), in eval mode, for a caller that keeps them.
    nets: list[nn.Module] = field(default_factory=list)


def member_seed(seed: int, index: int) -> int:
    """Net `index` of an ensemble: the first has the run's seed (a single net is unchanged),
    the others independent streams."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def epoch_stats(
    epoch: int, train_loss: float, scores: Mapping[str, Scores], seconds: float
) -> EpochStats:
    return EpochStats(
        epoch,
        train_loss,
        {name: sc.comparison for name, sc in scores.items()},
        seconds,
        digits={name: sc.digits for name, sc in scores.items()},
        all_pairs={name: sc.all_pairs for name, sc in scores.items() if sc.all_pairs is not None},
    )


@dataclass
class Streams:
    """A net's own random streams beside its initialization: batch order, augmentation draws
    and dropout masks. A net's training depends on its own seed alone."""

    order: torch.Generator
    aug: torch.Generator
    drop: torch.Generator

    @classmethod
    def of(cls, seed: int, device: torch.device) -> Streams:
        return cls(
            torch.Generator().manual_seed(seed + 1),
            torch.Generator(device=device).manual_seed(seed + 2),
            torch.Generator(device=device).manual_seed(seed + 3),
        )


def new_net(config: Config, seed: int, device: torch.device) -> nn.Module:
    """A new net of `config` initialized from `seed` (the caller forks the global state)."""
    torch.manual_seed(seed)
    return build_model(config).to(device)
