"""Benchmark: the project's training loop vs a loop written the common way, and the loop's
options side by side.

The reference uses a DataLoader over a TensorDataset, the default memory format, and evaluates
under torch.no_grad() instead of inference_mode. Same model config, data, epochs and threads.
Runs alternate A and B; the table gives medians over the repetitions and the ratio B / A.

    python benchmarks/loop.py [--reps 5] [--epochs 2] [--threads 1]

With --options, each configuration of a spread (the default, narrow and wide, small and large
batches, cnn and mlp) trains an epoch and scores the validation images over all ordered pairs
(what a search trial does each epoch) under each option: today's loop (fp32, channels-last for
the conv families), bf16 autocast, fp32 without channels-last, two threads instead of one, and,
on the default configuration, torch.compile (its compile time apart). The arms alternate within
each repetition; seconds per epoch are medians, with each arm's ratio to today's.

    python benchmarks/loop.py --options [--reps 3] [--epochs 2]
"""

from __future__ import annotations

import argparse
import statistics
import time

import torch
from torch.utils.data import DataLoader, TensorDataset

from data import Splits, load_source, make_splits
from models import Config, train
from models.loss import pair_loss
from models.nets import build_model
from models.precision import fast_bf16
from models.scoring import Tensors, evaluate, uses_channels_last
from models.training import new_member, train_epoch


def reference_train(config: Config, splits: Splits, seed: int) -> float:
    torch.manual_seed(seed)
    model = build_model(config)
    opt = torch.optim.AdamW(model.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    norm = lambda x: (x - splits.mean) / splits.std  # noqa: E731
    train_ds = TensorDataset(norm(splits.train.input), splits.train.target, splits.train.classes)
    val_ds = TensorDataset(norm(splits.val.input), splits.val.target)
    loader = DataLoader(train_ds, batch_size=config.batch_size, shuffle=True)
    acc = 0.0
    for _ in range(config.epochs):
        model.train()
        for x, target, classes in loader:
            if len(x) < 2:
                continue
            main, digits = model(x)
            loss = pair_loss(main, digits, target, classes, config.alpha)
            opt.zero_grad()
            loss.backward()
            opt.step()
        model.eval()
        correct = 0
        with torch.no_grad():
            for x, target in DataLoader(val_ds, batch_size=250):
                correct += (model(x)[0].argmax(1) == target).sum().item()
        acc = correct / len(val_ds)
    return acc


SPREAD = {
    "default (siamese, 32 filters, batch 64)": Config(),
    "narrow (16 filters)": Config(nb_filters=16),
    "wide (64 filters)": Config(nb_filters=64),
    "small batch (16)": Config(batch_size=16),
    "large batch (128)": Config(batch_size=128),
    "cnn (no weight sharing)": Config(family="cnn", head="learned"),
    "mlp": Config(family="mlp", head="learned"),
}


def arm_epochs(
    config: Config, splits: Splits, arm: str, *, epochs: int, seed: int
) -> tuple[float, float]:
    """Seconds of the first epoch and the median of the others (each epoch: training, then the
    validation images scored over all ordered pairs), one net under option `arm`."""
    device = torch.device("cpu")
    channels_last = uses_channels_last(config) and arm != "fp32, no channels-last"
    precision = "bf16" if arm == "bf16 autocast" else "fp32"
    torch.set_num_threads(2 if arm == "fp32, 2 threads" else 1)
    member = new_member(config, seed, device, channels_last)
    if arm == "torch.compile":
        member.model = torch.compile(member.model)
    train_data = Tensors.of(splits.train, splits.mean, splits.std, device)
    val = Tensors.of(splits.val, splits.mean, splits.std, device)
    seconds = []
    for _ in range(epochs):
        start = time.perf_counter()
        train_epoch(member, config, train_data, channels_last, precision)
        evaluate(member.model, val, channels_last, all_pairs=True, precision=precision)
        seconds.append(time.perf_counter() - start)
    return seconds[0], statistics.median(seconds[1:] or seconds)


def options(reps: int, epochs: int) -> None:
    splits = make_splits(load_source("mnist5k"), seed=0)
    arms = ["today (fp32)", "bf16 autocast", "fp32, no channels-last", "fp32, 2 threads"]
    print(
        f"{len(splits.train)} training pairs, {len(splits.val)} validation pairs scored over all "
        f"ordered pairs; {epochs} epochs a run (the first apart), {reps} alternating repetitions, "
        f"median seconds an epoch; CPU: {torch.backends.cpu.get_cpu_capability()}, bf16 native: "
        f"{fast_bf16(torch.device('cpu'))}"
    )
    header = "  ".join(f"{a:>22}" for a in arms)
    print(f"{'configuration':<40}{header}")
    for name, config in SPREAD.items():
        times: dict[str, list[float]] = {a: [] for a in arms}
        for rep in range(reps):
            for arm in arms:
                times[arm].append(arm_epochs(config, splits, arm, epochs=epochs + 1, seed=rep)[1])
        medians = {a: statistics.median(t) for a, t in times.items()}
        base = medians[arms[0]]
        cells = [f"{medians[a]:8.3f} s ({base / medians[a]:4.2f}x)" for a in arms]
        print(f"{name:<40}" + "  ".join(f"{c:>22}" for c in cells))
    first, steady = arm_epochs(Config(), splits, "torch.compile", epochs=epochs + 1, seed=0)
    today = arm_epochs(Config(), splits, "today (fp32)", epochs=epochs + 1, seed=0)[1]
    print(
        f"torch.compile, default configuration: first epoch {first:.1f} s (compiling), then "
        f"{steady:.3f} s an epoch against today's {today:.3f} s ({today / steady:.2f}x)"
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=5, help="repetitions per cell (default: 5)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default: 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    p.add_argument("--options", action="store_true",
                   help="the loop's options side by side (precision, memory format, threads, "
                   "torch.compile) over a spread of configurations")  # fmt: skip
    args = p.parse_args()
    if args.options:
        options(args.reps, args.epochs)
        return
    torch.set_num_threads(args.threads)
    source = load_source("mnist5k")
    splits = make_splits(source, seed=0)
    device = torch.device("cpu")
    print(
        f"default siamese config, {len(splits.train)} training pairs, {args.epochs} epochs, "
        f"{args.threads} thread(s), {args.reps} alternating repetitions, median seconds"
    )
    print(f"{'batch':>5}  {'project (s)':>11}  {'reference (s)':>13}  {'ratio':>6}")
    for batch in (10, 50, 100):
        # without augmentation: the reference loop has none
        config = Config(batch_size=batch, epochs=args.epochs, augment=False)
        ours, ref = [], []
        for rep in range(args.reps):
            t = time.perf_counter()
            train(
                config,
                splits.train,
                {"val": splits.val},
                mean=splits.mean,
                std=splits.std,
                seed=rep,
                device=device,
                threads=args.threads,
            )
            ours.append(time.perf_counter() - t)
            t = time.perf_counter()
            reference_train(config, splits, rep)
            ref.append(time.perf_counter() - t)
        a, b = statistics.median(ours), statistics.median(ref)
        print(f"{batch:>5}  {a:>11.2f}  {b:>13.2f}  {b / a:>5.2f}x")


if __name__ == "__main__":
    main()
