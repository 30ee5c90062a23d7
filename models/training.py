"""The one training loop, used by the search and the final evaluation alike."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import torch
from torch import nn

from data.pairs import PairSet
from models.augment import augment
from models.config import Config
from models.loss import pair_loss
from models.nets import build_model

EVAL_BATCH = 250


class Diverged(Exception):
    """The training loss became NaN or infinite."""


@dataclass(frozen=True)
class EpochStats:
    epoch: int  # 1-based
    train_loss: float  # mean over the epoch's batches
    accuracy: dict[str, float]  # comparison accuracy on each evaluated set
    seconds: float  # training and evaluation time of this epoch


@dataclass
class TrainResult:
    history: list[EpochStats] = field(default_factory=list)
    train_accuracy: float = math.nan  # clean (eval-mode) accuracy on the training pairs at the end


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


@torch.inference_mode()
def evaluate(model: nn.Module, data: Tensors, channels_last: bool = False) -> tuple[float, float]:
    """(comparison accuracy, digit accuracy) in eval mode, in batches of EVAL_BATCH."""
    model.eval()
    correct = digits_correct = 0
    for start in range(0, len(data.target), EVAL_BATCH):
        x = data.x[start : start + EVAL_BATCH]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        main, digits = model(x)
        correct += (main.argmax(1) == data.target[start : start + EVAL_BATCH]).sum().item()
        hits = digits.argmax(2) == data.classes[start : start + EVAL_BATCH]
        digits_correct += hits.sum().item()
    n = len(data.target)
    return correct / n, digits_correct / (2 * n)


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
) -> TrainResult:
    """Train `config` on `train_pairs`, evaluating every set of `eval_pairs` after each epoch.

    Every random draw (initialization, batch order, dropout, augmentation) follows `seed`;
    the global random state of the caller is left as it was. `on_epoch` may raise to stop
    (a search raises optuna.TrialPruned there). Raises Diverged on a NaN or infinite loss.
    """
    if threads is not None:
        torch.set_num_threads(threads)
    channels_last = uses_channels_last(config)
    train_data = Tensors.of(train_pairs, mean, std, device)
    evals = {name: Tensors.of(p, mean, std, device) for name, p in eval_pairs.items()}
    fork_devices = [device] if device.type == "cuda" else []
    with torch.random.fork_rng(devices=fork_devices):
        torch.manual_seed(seed)
        model = build_model(config).to(device)
        if channels_last:
            model = model.to(memory_format=torch.channels_last)
        order = torch.Generator().manual_seed(seed + 1)
        aug = torch.Generator(device=device).manual_seed(seed + 2)
        optimizer = torch.optim.AdamW(
            model.parameters(), lr=config.lr, weight_decay=config.weight_decay
        )
        schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
        result = TrainResult()
        n = len(train_data.target)
        for epoch in range(1, config.epochs + 1):
            start = time.perf_counter()
            model.train()
            total = torch.zeros((), device=device)
            perm = torch.randperm(n, generator=order).to(device)
            # A last batch of one pair is dropped: batch norm cannot train on a single sample.
            batches = [b for b in range(0, n, config.batch_size) if n - b >= 2]
            for first in batches:
                idx = perm[first : first + config.batch_size]
                x, classes, target = train_data.x[idx], train_data.classes[idx], None
                if config.augment:
                    x, classes, target = augment(x, classes, aug)
                else:
                    target = train_data.target[idx]
                if channels_last:
                    x = x.contiguous(memory_format=torch.channels_last)
                main, digits = model(x)
                loss = pair_loss(main, digits, target, classes, config.alpha)
                optimizer.zero_grad(set_to_none=True)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            schedule.step()
            train_loss = total.item() / len(batches)  # one device sync per epoch
            if not math.isfinite(train_loss):
                raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
            accuracy = {name: evaluate(model, d, channels_last)[0] for name, d in evals.items()}
            stats = EpochStats(epoch, train_loss, accuracy, time.perf_counter() - start)
            result.history.append(stats)
            if on_epoch is not None:
                on_epoch(stats)
        result.train_accuracy = evaluate(model, train_data, channels_last)[0]
    return result
