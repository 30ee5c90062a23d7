"""Benchmark: the project's training loop vs a loop written the common way.

The reference uses a DataLoader over a TensorDataset, the default memory format, and evaluates
under torch.no_grad() instead of inference_mode. Same model config, data, epochs and threads.
Runs alternate A and B; the table gives medians over the repetitions and the ratio B / A.

    python benchmarks/loop.py [--reps 5] [--epochs 2] [--threads 1]
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


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--reps", type=int, default=5, help="repetitions per cell (default: 5)")
    p.add_argument("--epochs", type=int, default=2, help="epochs per run (default: 2)")
    p.add_argument("--threads", type=int, default=1, help="torch threads (default: 1)")
    args = p.parse_args()
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
