"""Training runs of one configuration packed into one network (models/packed.py): every net of
every run takes its step in the same pass, each on its own batch of its own run's pairs.

The same nets as trained alone (models/training.py): each has the initial weights, the batch
order, the augmentation draws and the dropout masks of its own seed; AdamW and the cosine
schedule are element-wise, so one optimizer over the packed tensors steps each net as its own
would; the loss is the sum of the nets' own losses, so each net's gradient is its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence

import torch

from models.augment import apply, concat, draw
from models.config import Config
from models.ensemble import mean_log_posterior
from models.loss import member_losses
from models.nets import SIZE, digits_comparison
from models.packed import PackedNet
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
from models.scoring import EVAL_BATCH, Scores, Tensors, digits_alone, score, uses_channels_last


def stacked(sets: Sequence[Tensors]) -> Tensors:
    """One Tensors whose tensors have a leading run dimension: [R, N, ...]."""
    if len({len(s) for s in sets}) > 1:
        raise ValueError("packed runs need pair sets of one size")
    return Tensors(
        torch.stack([s.x for s in sets]),
        torch.stack([s.target for s in sets]),
        torch.stack([s.classes for s in sets]),
    )


def train_epoch(
    packed: PackedNet,
    optimizer: torch.optim.Optimizer,
    config: Config,
    data: Tensors,  # [R, n, ...]: each run's training pairs
    run_of: torch.Tensor,  # [K]: the run of each member
    streams: Sequence[Streams],
    precision: str,
) -> torch.Tensor:
    """One epoch of every member; each member's mean training loss, [K]."""
    packed.train()
    device, (k, n) = data.x.device, (len(streams), data.x.shape[1])
    perms = torch.stack([torch.randperm(n, generator=s.order) for s in streams]).to(device)
    # A last batch of one pair is dropped: batch norm cannot train on a single sample.
    batches = [b for b in range(0, n, config.batch_size) if n - b >= 2]
    total = torch.zeros(k, device=device)
    rows = run_of[:, None]
    for first in batches:
        idx = perms[:, first : first + config.batch_size]  # [K, B]
        b = idx.shape[1]
        x, classes = data.x[rows, idx], data.classes[rows, idx]
        if config.augment:
            draws = concat([draw(b, s.aug, device) for s in streams])
            x, classes, target = apply(x.view(k * b, 2, SIZE, SIZE), classes.view(k * b, 2), draws)
            x, classes, target = (
                x.view(k, b, 2, SIZE, SIZE),
                classes.view(k, b, 2),
                target.view(k, b),
            )
        else:
            target = data.target[rows, idx]
        with autocast(precision, device):
            main, digits = packed(x)
            losses = member_losses(main, digits, target, classes, config.alpha)
        optimizer.zero_grad(set_to_none=True)
        losses.sum().backward()
        optimizer.step()
        total += losses.detach()
    return total / len(batches)


@torch.inference_mode()
def evaluate(
    packed: PackedNet,
    data: Tensors,
    nets: int,
    *,
    all_pairs: bool = False,
    first_net: bool = False,
    precision: str = "fp32",
) -> tuple[list[Scores], list[Scores]]:
    """Each run's scores on its own set (data: [R, N, ...]) as an ensemble of its `nets`
    members, the way models.ensemble.Ensemble combines them; with `first_net`, also each run's
    first member alone."""
    packed.eval()
    runs, n = data.x.shape[:2]
    every = all_pairs and digits_alone(packed.config)
    mains, digit_logits, firsts, seconds = [], [], [], []
    for start in range(0, n, EVAL_BATCH):
        x = data.x[:, start : start + EVAL_BATCH].repeat_interleave(nets, 0)  # [K, B, ...]
        with autocast(precision, x.device):
            main, digits = packed(x)
            flipped = packed(x.flip(2))[1] if every and not packed.config.weight_sharing else None
        main, digits = main.float(), digits.float()
        mains.append(main)
        digit_logits.append(digits)
        if every:  # each image's posteriors in both positions, as scoring.both_positions
            p = digits.softmax(-1)
            if flipped is None:
                firsts.append(p.flatten(1, 2))
                seconds.append(p.flatten(1, 2))
            else:
                q = flipped.float().softmax(-1)
                firsts.append(torch.stack([p[:, :, 0], q[:, :, 0]], 2).flatten(1, 2))
                seconds.append(torch.stack([q[:, :, 1], p[:, :, 1]], 2).flatten(1, 2))
    main, digits = torch.cat(mains, 1), torch.cat(digit_logits, 1)
    first, second = (torch.cat(t, 1) for t in (firsts, seconds)) if every else (None, None)
    together, alone = [], []
    for r in range(runs):
        own = Tensors(data.x[r], data.target[r], data.classes[r])
        m = slice(r * nets, (r + 1) * nets)
        positions = (first[m].mean(0), second[m].mean(0)) if first is not None else None
        if nets == 1:
            together.append(score(own, main[m][0], digits[m][0], positions))
            continue
        mean_digits = mean_log_posterior(list(digits[m]))
        if packed.config.head == "digits":
            mean_main = digits_comparison(mean_digits)
        else:
            mean_main = mean_log_posterior(list(main[m]))
        together.append(score(own, mean_main, mean_digits, positions))
        if first_net:
            solo = (first[m][0], second[m][0]) if first is not None else None
            alone.append(score(own, main[m][0], digits[m][0], solo))
    return together, alone


def train_packed(
    config: Config,
    runs: Sequence[Run],
    *,
    device: torch.device,
    on_epoch: Callable[[int, EpochStats], None] | None = None,
    all_pairs: bool = False,
    first_net: bool = False,
    precision: str = "fp32",
) -> list[TrainResult]:
    """Train config.ensemble nets for each of `runs` as one packed network; one TrainResult per
    run, as models.training.train would give it for that run alone. The runs need training
    sets of one size and evaluation sets of the same names and sizes. `on_epoch(r, stats)`
    hears run r's epochs and may raise to stop the pack. Raises Diverged where a run's loss
    becomes NaN or infinite. The caller forks the global random state."""
    names = list(runs[0].eval_pairs)
    if any(list(r.eval_pairs) != names for r in runs):
        raise ValueError("packed runs need evaluation sets of the same names")
    nets = config.ensemble
    train_data = stacked([Tensors.of(r.train_pairs, r.mean, r.std, device) for r in runs])
    evals = {
        name: stacked([Tensors.of(r.eval_pairs[name], r.mean, r.std, device) for r in runs])
        for name in names
    }
    seeds = [member_seed(r.seed, j) for r in runs for j in range(nets)]
    packed = PackedNet([new_net(config, s, device) for s in seeds]).to(device)
    packed.channels_last = uses_channels_last(config)
    streams = [Streams.of(s, device) for s in seeds]
    packed.set_generators([s.drop for s in streams])
    optimizer = torch.optim.AdamW(
        packed.parameters(), lr=config.lr, weight_decay=config.weight_decay
    )
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, T_max=config.epochs)
    run_of = torch.arange(len(runs), device=device).repeat_interleave(nets)
    results = [TrainResult() for _ in runs]
    for r in results:
        r.first_net = TrainResult() if first_net and nets > 1 else None
    for epoch in range(1, config.epochs + 1):
        start = time.perf_counter()
        losses = train_epoch(packed, optimizer, config, train_data, run_of, streams, precision)
        schedule.step()
        per_net = losses.tolist()  # one device sync per epoch
        run_loss = [sum(per_net[i * nets : (i + 1) * nets]) / nets for i in range(len(runs))]
        for loss in run_loss:
            if not math.isfinite(loss):
                raise Diverged(f"training loss became {loss} in epoch {epoch}")
        scores = {name: evaluate(packed, d, nets, all_pairs=all_pairs, first_net=first_net,
                                 precision=precision)
                  for name, d in evals.items()}  # fmt: skip
        share = (time.perf_counter() - start) / len(runs)  # a run's share of the pack's time
        for i, result in enumerate(results):
            stats = epoch_stats(epoch, run_loss[i], {n: s[0][i] for n, s in scores.items()}, share)
            result.history.append(stats)
            if result.first_net is not None:
                alone = {n: s[1][i] for n, s in scores.items()}
                result.first_net.history.append(
                    epoch_stats(epoch, per_net[i * nets], alone, share / nets)
                )
            if on_epoch is not None:
                on_epoch(i, stats)
    final, alone = evaluate(packed, train_data, nets, first_net=first_net, precision=precision)
    members = packed.unpack()  # in eval mode, as evaluate left the pack
    for i, result in enumerate(results):
        result.train_accuracy = final[i].comparison
        result.nets = members[i * nets : (i + 1) * nets]
        if result.first_net is not None:
            result.first_net.train_accuracy = alone[i].comparison
    return results
