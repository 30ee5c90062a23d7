"""The one training loop, used by the search and the final evaluation alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn

from data.pairs import PairSet
from models.augment import augment
from models.config import Config
from models.ensemble import Ensemble, reads_digits_alone
from models.loss import pair_loss
from models.metrics import all_pairs_accuracy
from models.nets import build_model

EVAL_BATCH = 250


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches
    accuracy: dict[str, float]  # comparison accuracy on each evaluated set's pairs
    seconds: float  # training and evaluation time of this epoch
    digits: dict[str, float] = field(default_factory=dict)  # digit accuracy on each set
    # Comparison accuracy over all ordered pairs of each set's images, where it was asked for
    # and the model reads each digit on its own (see evaluate).
    all_pairs: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class Scores:
    comparison: float  # on the pairs as drawn
    digits: float
    all_pairs: float | None


@dataclass
class TrainResult:
    history: list[EpochStats] = field(default_factory=list)
    train_accuracy: float = math.nan  # clean (eval-mode) accuracy on the training pairs at the end
    # With `first_net`, an ensemble's first net scored on its own beside the ensemble: one net
    # of the configuration, trained on the run's data from the run's seed, at no extra training.
    first_net: TrainResult | None = None
    # The trained nets (config.ensemble of them), in eval mode, for a caller that keeps them.
    nets: list[nn.Module] = field(default_factory=list)


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


def uses_channels_last(config: Config) -> bool:
    # channels_last measured faster for the conv families on CPU; an MLP has no conv to help.
    return config.family != "mlp"


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
    model: nn.Module, data: Tensors, channels_last: bool = False, *, all_pairs: bool = False
) -> Scores:
    """Comparison and digit accuracy in eval mode, in batches of EVAL_BATCH; with `all_pairs`,
    for a model that reads digits alone, also the accuracy over every ordered pair of the
    set's images."""
    model.eval()
    correct = digits_correct = 0
    posteriors = []  # per batch: (first position, second position) of each image, [2B, 10]
    every = all_pairs and reads_digits_alone(model)
    for start in range(0, len(data.target), EVAL_BATCH):
        x = data.x[start : start + EVAL_BATCH]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        main, digits = model(x)
        correct += (main.argmax(1) == data.target[start : start + EVAL_BATCH]).sum().item()
        hits = digits.argmax(2) == data.classes[start : start + EVAL_BATCH]
        digits_correct += hits.sum().item()
        if every:
            posteriors.append(both_positions(model, x, digits))
    n = len(data.target)
    every_pair = None
    if every:
        first, second = (torch.cat(p) for p in zip(*posteriors, strict=True))
        every_pair = all_pairs_accuracy(first, second, data.classes.reshape(-1))
    return Scores(correct / n, digits_correct / (2 * n), every_pair)


@dataclass
class Member:
    """One net of a training run, with its optimizer, schedule and random streams."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    order: torch.Generator  # batch order
    aug: torch.Generator  # augmentation draws


def member_seed(seed: int, index: int) -> int:
    """Net `index` of an ensemble: the first has the run's seed (a single net is unchanged),
    the others independent streams."""
    if index == 0:
        return seed
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0])


def new_member(config: Config, seed: int, device: torch.device, channels_last: bool) -> Member:
    torch.manual_seed(seed)
    model = build_model(config).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    return Member(
        model,
        optimizer,
        torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs),
        torch.Generator().manual_seed(seed + 1),
        torch.Generator(device=device).manual_seed(seed + 2),
    )


def train_epoch(member: Member, config: Config, data: Tensors, channels_last: bool) -> float:
    """One epoch of one net; its mean training loss."""
    model = member.model
    model.train()
    total = torch.zeros((), device=data.x.device)
    n = len(data.target)
    perm = torch.randperm(n, generator=member.order).to(data.x.device)
    # A last batch of one pair is dropped: batch norm cannot train on a single sample.
    batches = [b for b in range(0, n, config.batch_size) if n - b >= 2]
    for first in batches:
        idx = perm[first : first + config.batch_size]
        x, classes, target = data.x[idx], data.classes[idx], None
        if config.augment:
            x, classes, target = augment(x, classes, member.aug)
        else:
            target = data.target[idx]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        main, digits = model(x)
        loss = pair_loss(main, digits, target, classes, config.alpha)
        member.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        member.optimizer.step()
        total += loss.detach()
    member.schedule.step()
    return total.item() / len(batches)  # one device sync per epoch


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


def train(
    config: Config,
    train_pairs: PairSet,
    eval_pairs: Mapping[str, PairSet],
    *,
    mean: float,
    std: float,
    seed: int,
    device: torch.device,
    threads: int | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    all_pairs: bool = False,
    first_net: bool = False,
) -> TrainResult:
    """Train `config` on `train_pairs`, evaluating every set of `eval_pairs` after each epoch.

    Every random draw (initialization, batch order, dropout, augmentation) follows `seed`;
    the global random state of the caller is left as it was. An ensemble's nets train side by
    side, an epoch each in turn, and are evaluated together. `on_epoch` may raise to stop
    (a search raises optuna.TrialPruned there). With `all_pairs`, every epoch also scores each
    set over all ordered pairs of its images where the model allows (see evaluate). With
    `first_net`, an ensemble's first net is also scored alone (TrainResult.first_net). Raises
    Diverged on a NaN or infinite loss.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    channels_last = uses_channels_last(config)
    train_data = Tensors.of(train_pairs, mean, std, device)
    evals = {name: Tensors.of(p, mean, std, device) for name, p in eval_pairs.items()}
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        members = [
            new_member(config, member_seed(seed, k), device, channels_last)
            for k in range(config.ensemble)
        ]
        model = members[0].model if len(members) == 1 else Ensemble([m.model for m in members])
        result = TrainResult()
        first = result.first_net = TrainResult() if first_net and len(members) > 1 else None
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            losses, seconds = [], []
            for m in members:
                began = time.perf_counter()
                losses.append(train_epoch(m, config, train_data, channels_last))
                seconds.append(time.perf_counter() - began)
            train_loss = sum(losses) / len(losses)
            if not math.isfinite(train_loss):
                raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
            scores = {
                name: evaluate(model, d, channels_last, all_pairs=all_pairs)
                for name, d in evals.items()
            }
            stats = epoch_stats(epoch, train_loss, scores, time.perf_counter() - start)
            if first is not None:
                began = time.perf_counter()
                alone = {
                    name: evaluate(members[0].model, d, channels_last, all_pairs=all_pairs)
                    for name, d in evals.items()
                }
                spent = seconds[0] + time.perf_counter() - began
                first.history.append(epoch_stats(epoch, losses[0], alone, spent))
            result.history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
        result.train_accuracy = evaluate(model, train_data, channels_last).comparison
        result.nets = [m.model for m in members]
        if first is not None:
            first.train_accuracy = evaluate(members[0].model, train_data, channels_last).comparison
    return result
