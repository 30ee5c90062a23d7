"""Training a configuration's runs, for the search and the final evaluation alike: packed into
one network (models/packed_training.py) or one net at a time (here), the same nets either way."""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from data import PairSet
from models.augment import augment
from models.config import Config
from models.ensemble import Ensemble
from models.loss import pair_loss
from models.nets import Dropout
from models.packed_training import train_packed
from models.precision import autocast
from models.runs import (
    Diverged,
    EpochStats,
    Run,
    Streams,
    TrainResult,
    epoch_stats,
    member_seed,
    new_net,
)
from models.scoring import Tensors, evaluate, uses_channels_last

# How many nets train in one pack at most; a caller with more runs splits them
# (search.evaluation.rounds). Memory grows with the pack: activations of every net's batch.
MAX_PACK = 32
# On a CPU a pack pays off while its widest activation stays in the cache: beyond that the
# element-wise layers (batch norm, ReLU, pooling) run from memory and a pack of the default
# net is slower than its nets one by one (benchmarks/packing.py measures both sides).
CPU_PACK_BYTES = 6 << 20


def activation_bytes(config: Config) -> int:
    """Bytes of one net's widest activation on a training batch: the first conv layer's output
    (both digits of each pair through a siamese branch), or an MLP's hidden layer."""
    if config.family == "mlp":
        return config.batch_size * config.hidden_units * 4
    images = config.batch_size * (2 if config.family == "siamese" else 1)
    return images * config.nb_filters * 14 * 14 * 4


def pack_size(config: Config, device: torch.device) -> int:
    """How many nets of `config` to train in one pack on `device` (at least one run's
    ensemble, which trains together whatever this says)."""
    if device.type != "cpu":
        return MAX_PACK
    return max(1, min(MAX_PACK, CPU_PACK_BYTES // activation_bytes(config)))


@dataclass
class Member:
    """One net trained alone, with its optimizer, schedule and random streams."""

    model: nn.Module
    optimizer: torch.optim.Optimizer
    schedule: torch.optim.lr_scheduler.LRScheduler
    streams: Streams


def new_member(config: Config, seed: int, device: torch.device, channels_last: bool) -> Member:
    model = new_net(config, seed, device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    streams = Streams.of(seed, device)
    for m in model.modules():
        if isinstance(m, Dropout):
            m.generator = streams.drop
    optimizer = torch.optim.AdamW(
        model.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    return Member(model, optimizer, schedule, streams)


def train_epoch(
    member: Member, config: Config, data: Tensors, channels_last: bool, precision: str
) -> float:
    """One epoch of one net; its mean training loss."""
    model = member.model
    model.train()
    total = torch.zeros((), device=data.x.device)
    n = len(data.target)
    perm = torch.randperm(n, generator=member.streams.order).to(data.x.device)
    # A last batch of one pair is dropped: batch norm cannot train on a single sample.
    batches = [b for b in range(0, n, config.batch_size) if n - b >= 2]
    for first in batches:
        idx = perm[first : first + config.batch_size]
        x, classes, target = data.x[idx], data.classes[idx], None
        if config.augment:
            x, classes, target = augment(x, classes, member.streams.aug)
        else:
            target = data.target[idx]
        if channels_last:
            x = x.contiguous(memory_format=torch.channels_last)
        with autocast(precision, x.device):
            main, digits = model(x)
            loss = pair_loss(main, digits, target, classes, config.alpha)
        member.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        member.optimizer.step()
        total += loss.detach()
    member.schedule.step()
    return total.item() / len(batches)  # one device sync per epoch


def train_alone(
    config: Config,
    run: Run,
    *,
    device: torch.device,
    on_epoch: Callable[[EpochStats], None] | None,
    all_pairs: bool,
    first_net: bool,
    precision: str,
) -> TrainResult:
    """One run, its nets trained one at a time (an epoch each in turn) and evaluated together."""
    channels_last = uses_channels_last(config)
    train_data = Tensors.of(run.train_pairs, run.mean, run.std, device)
    evals = {name: Tensors.of(p, run.mean, run.std, device) for name, p in run.eval_pairs.items()}
    members = [
        new_member(config, member_seed(run.seed, k), device, channels_last)
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
            losses.append(train_epoch(m, config, train_data, channels_last, precision))
            seconds.append(time.perf_counter() - began)
        train_loss = sum(losses) / len(losses)
        if not math.isfinite(train_loss):
            raise Diverged(f"training loss became {train_loss} in epoch {epoch}")
        scores = {
            name: evaluate(model, d, channels_last, all_pairs=all_pairs, precision=precision)
            for name, d in evals.items()
        }
        stats = epoch_stats(epoch, train_loss, scores, time.perf_counter() - start)
        if first is not None:
            began = time.perf_counter()
            alone = {
                name: evaluate(
                    members[0].model, d, channels_last, all_pairs=all_pairs, precision=precision
                )
                for name, d in evals.items()
            }
            spent = seconds[0] + time.perf_counter() - began
            first.history.append(epoch_stats(epoch, losses[0], alone, spent))
        result.history.append(stats)
        if on_epoch is not None:
            on_epoch(stats)
    result.train_accuracy = evaluate(
        model, train_data, channels_last, precision=precision
    ).comparison
    result.nets = [m.model for m in members]
    if first is not None:
        first.train_accuracy = evaluate(
            members[0].model, train_data, channels_last, precision=precision
        ).comparison
    return result


def train_runs(
    config: Config,
    runs: Sequence[Run],
    *,
    device: torch.device,
    pack: bool = True,
    threads: int | None = None,
    on_epoch: Callable[[int, EpochStats], None] | None = None,
    all_pairs: bool = False,
    first_net: bool = False,
    precision: str = "fp32",
) -> list[TrainResult]:
    """Train `config` on each of `runs` (config.ensemble nets each): packed into one network
    where `pack` is on and a run's ensemble fits pack_size, else one net at a time; the same
    nets either way. A caller with more runs than a pack holds splits them. One TrainResult
    per run; `on_epoch(r, stats)` hears run r's epochs (see train); `precision` is fp32 or bf16
    (models.precision). The global random state of the caller is left as it was."""
    if threads is not None:
        torch.set_num_threads(threads)
    fork_devices = [device] if device.type == "cuda" else []
    packed = pack and len(runs) * config.ensemble > 1
    with torch.random.fork_rng(devices=fork_devices):
        if packed and pack_size(config, device) >= config.ensemble:
            return train_packed(
                config, runs, device=device, on_epoch=on_epoch, all_pairs=all_pairs,
                first_net=first_net, precision=precision,
            )  # fmt: skip
        out = []
        for i, run in enumerate(runs):
            hear = None if on_epoch is None else (lambda stats, i=i: on_epoch(i, stats))
            out.append(train_alone(config, run, device=device, on_epoch=hear,
                                   all_pairs=all_pairs, first_net=first_net,
                                   precision=precision))  # fmt: skip
        return out


def train(
    config: Config,
    train_pairs: PairSet,
    eval_pairs: Mapping[str, PairSet],
    *,
    mean: float,
    std: float,
    seed: int,
    device: torch.device,
    pack: bool = True,
    threads: int | None = None,
    on_epoch: Callable[[EpochStats], None] | None = None,
    all_pairs: bool = False,
    first_net: bool = False,
    precision: str = "fp32",
) -> TrainResult:
    """Train `config` on `train_pairs`, evaluating every set of `eval_pairs` after each epoch.

    Every random draw (initialization, batch order, dropout, augmentation) follows `seed`;
    the global random state of the caller is left as it was. An ensemble's nets train packed
    into one network (`pack`), or one at a time, and are evaluated together. `on_epoch` may
    raise to stop (a search raises optuna.TrialPruned there). With `all_pairs`, every epoch
    also scores each set over all ordered pairs of its images where the model allows (see
    models.scoring.evaluate). With `first_net`, an ensemble's first net is also scored alone
    (TrainResult.first_net). `precision` is the arithmetic of every forward pass: fp32, or
    bf16 autocast (models.precision; the weights stay fp32). Raises Diverged on a NaN or
    infinite loss.
    """
    run = Run(train_pairs, eval_pairs, mean, std, seed)
    hear = None if on_epoch is None else (lambda _, stats: on_epoch(stats))
    return train_runs(
        config, [run], device=device, pack=pack, threads=threads, on_epoch=hear,
        all_pairs=all_pairs, first_net=first_net, precision=precision,
    )[0]  # fmt: skip
