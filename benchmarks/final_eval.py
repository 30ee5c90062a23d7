"""Benchmark: the final evaluation's rounds in parallel (one 1-thread process per core) vs
sequential (every core's threads in one process: the command's own, as search.final_eval
runs one worker's work), through the code search.final_eval uses. Runs alternate A and B;
medians over the repetitions.

    python benchmarks/final_eval.py [--rounds 10] [--reps 3] [--epochs 20]
"""

from __future__ import annotations

import argparse
import statistics
import time
from dataclasses import replace

from models import Config
from search.evaluation import round_seed
from search.evaluation.rounds import evaluate_rounds, jobs_for
from search.machine import CORES

CONFIG = Config(  # a mid-size siamese configuration, like those the search selects
    family="siamese",
    nb_filters=32,
    conv_layers=2,
    hidden_units=128,
    dropout=0.3,
    weight_sharing=True,
    head="digits",
    alpha=0.3,
    lr=3e-3,
    batch_size=64,
    augment=True,
)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--rounds", type=int, default=10, help="rounds per evaluation (default: 10)")
    p.add_argument("--reps", type=int, default=3, help="repetitions of each (default: 3)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per round (default: 20)")
    args = p.parse_args()
    config = replace(CONFIG, epochs=args.epochs)
    seeds = [round_seed(0, r) for r in range(args.rounds)]
    jobs = jobs_for("selection", config, seeds, train_pairs=1000, device="auto", first_net=None,
                    keep=None, pack=False, precision="fp32")  # fmt: skip
    arrangements = {f"parallel ({CORES} x 1 thread)": CORES, f"sequential (1 x {CORES})": 1}
    times: dict[str, list[float]] = {name: [] for name in arrangements}
    accuracy: dict[str, list[float]] = {}  # the last rep's, per arrangement
    for _ in range(args.reps):
        for name, workers in arrangements.items():
            start = time.perf_counter()
            rows = evaluate_rounds(jobs, dataset="mnist5k", data_dir=None, workers=workers).rows
            times[name].append(time.perf_counter() - start)
            accuracy[name] = [r.test_accuracy for r in rows]
    print(f"{args.rounds} rounds x {args.epochs} epochs, {args.reps} alternating reps; medians")
    print(f"{'arrangement':>26}  {'seconds':>7}  {'all reps':>24}")
    for name, ts in times.items():
        print(f"{name:>26}  {statistics.median(ts):>7.1f}  {' '.join(f'{t:.1f}' for t in ts):>24}")
    par, seq = (statistics.median(ts) for ts in times.values())
    print(f"speed-up parallel vs sequential: {seq / par:.2f}x (target >= 1.6x)")
    means = ", ".join(f"{100 * statistics.mean(a):.2f} %" for a in accuracy.values())
    print(f"mean test accuracy of the last rep (same rounds, thread counts differ): {means}")


if __name__ == "__main__":
    main()
