"""Benchmark: finished trials per minute for worker/thread arrangements on the same fixed list
of trial configurations (enqueued, no pruning), each arrangement its own study.

    python benchmarks/workers.py [--trials 16] [--epochs 10] [--storage journal|URL]

The default --storage journal uses a journal file in a temporary folder; pass a PostgreSQL URL
(an empty database) to measure the PostgreSQL path.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

PARAMS = {  # a mid-size siamese configuration
    "family": "siamese",
    "nb_filters": 32,
    "conv_layers": 2,
    "kernel_size": 3,
    "hidden_units": 128,
    "dropout": 0.3,
    "batch_norm": True,
    "weight_sharing": True,
    "head": "digits",
    "alpha": 0.3,
    "lr": 3e-3,
    "batch_size": 64,
    "weight_decay": 1e-4,
    "augment": True,
}
ARRANGEMENTS = [(1, 1), (1, 2), (2, 1), (4, 1)]  # (workers, threads)


def storage_for(kind: str, folder: Path, name: str) -> str:
    return str(folder / f"{name}.journal") if kind == "journal" else kind


def run(args: argparse.Namespace, workers: int, threads: int, folder: Path) -> float:
    name = f"bench-{workers}x{threads}-{int(time.time())}"
    storage = storage_for(args.storage, folder, name)
    base = [
        sys.executable,
        "-m",
        "search.run",
        "--study",
        name,
        "--storage",
        storage,
        "--trials",
        str(args.trials),
        "--epochs",
        str(args.epochs),
        "--pruner",
        "none",
    ]
    subprocess.run(
        [*base, "--workers", "1", "--create-only"], cwd=folder, check=True, capture_output=True
    )
    if storage.endswith(".journal"):
        from optuna.storages import JournalStorage
        from optuna.storages.journal import JournalFileBackend

        st: object = JournalStorage(JournalFileBackend(storage))
    else:
        st = storage
    study = optuna.load_study(study_name=name, storage=st)  # type: ignore[arg-type]
    for _ in range(args.trials):
        study.enqueue_trial(PARAMS)
    start = time.perf_counter()
    subprocess.run(
        [*base, "--workers", str(workers), "--threads", str(threads)],
        cwd=folder,
        check=True,
        capture_output=True,
    )
    return time.perf_counter() - start


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=16, help="trials per arrangement (default: 16)")
    p.add_argument("--epochs", type=int, default=10, help="epochs per trial (default: 10)")
    p.add_argument("--storage", default="journal", help="journal or a PostgreSQL URL")
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{args.trials} identical enqueued trials x {args.epochs} epochs, {os.cpu_count()} cores,"
        f" storage {args.storage}; wall time includes each worker's start-up"
    )
    print(f"{'workers x threads':>17}  {'seconds':>7}  {'trials/min':>10}  {'vs 1x2':>6}")
    with tempfile.TemporaryDirectory() as tmp:
        times = {a: run(args, *a, Path(tmp)) for a in ARRANGEMENTS}
    base = args.trials * 60 / times[(1, 2)]
    for (w, t), s in times.items():
        rate = args.trials * 60 / s
        print(f"{f'{w} x {t}':>17}  {s:>7.1f}  {rate:>10.1f}  {rate / base:>5.2f}x")


if __name__ == "__main__":
    main()
