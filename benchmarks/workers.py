"""Benchmark: finished trials per minute for worker/thread arrangements on the same fixed list
of trial configurations (enqueued, no pruning), each arrangement its own study. Arrangements
alternate within each repetition; the table gives medians over the repetitions.

    python benchmarks/workers.py [--trials 16] [--epochs 10] [--reps 3] [--storage journal|URL]
        [--arrangements 1x2,2x1]

The default --storage journal uses a journal file in a temporary folder; pass a PostgreSQL URL
(an empty database) to measure the PostgreSQL path.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna

from search.storage import open_storage
from search.storage.spec import parse_storage

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
}


def storage_for(kind: str, folder: Path, name: str) -> str:
    return str(folder / f"{name}.journal") if kind == "journal" else kind


def run(args: argparse.Namespace, workers: int, threads: int, folder: Path) -> float:
    name = f"bench-{workers}x{threads}-{time.time_ns()}"
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
        "--no-queued-defaults",
        "--finalists",  # the enqueued trials alone, no race after them
        "0",
    ]
    subprocess.run(
        [*base, "--workers", "1", "--create-only"], cwd=folder, check=True, capture_output=True
    )
    st = open_storage(parse_storage(storage), create=False)
    study = optuna.load_study(study_name=name, storage=st)
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
    p.add_argument("--reps", type=int, default=3, help="repetitions (default: 3)")
    p.add_argument("--storage", default="journal", help="journal or a PostgreSQL URL")
    p.add_argument(
        "--arrangements",
        default="1x2,2x1",
        help="WORKERSxTHREADS list, the first is the baseline (default: 1x2,2x1)",
    )
    args = p.parse_args()
    arrangements = [
        (int(w), int(t)) for w, t in (a.split("x") for a in args.arrangements.split(","))
    ]
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    print(
        f"{args.trials} identical enqueued trials x {args.epochs} epochs, {os.cpu_count()} cores,"
        f" storage {args.storage}, {args.reps} alternating reps; wall time includes each"
        " worker's start-up"
    )
    times: dict[tuple[int, int], list[float]] = {a: [] for a in arrangements}
    with tempfile.TemporaryDirectory() as tmp:
        for _ in range(args.reps):
            for a in arrangements:
                times[a].append(run(args, *a, Path(tmp)))
    w0, t0 = arrangements[0]
    print(f"{'workers x threads':>17}  {'seconds':>7}  {'trials/min':>10}  {f'vs {w0}x{t0}':>6}")
    base = args.trials * 60 / statistics.median(times[arrangements[0]])
    for (w, t), ts in times.items():
        rate = args.trials * 60 / statistics.median(ts)
        reps = " ".join(f"{s:.0f}" for s in ts)
        print(
            f"{f'{w} x {t}':>17}  {statistics.median(ts):>7.1f}  {rate:>10.1f}  "
            f"{rate / base:>5.2f}x  ({reps} s)"
        )


if __name__ == "__main__":
    main()
