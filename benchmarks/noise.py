"""Benchmark: how much a trial's value moves when only chance changes, before and after.

One configuration (Config's default, the study's 20 epochs), trained R times in two regimes:
"seeds" keeps the data split of seed 0 and changes only the training seed; "splits" changes
the split and the training seed together (what a different study seed does). Every run is
scored, from the same trained net, in the ways a trial's value can be read:

- pairs: comparison accuracy on the validation pairs (500 on mnist5k), the value before;
- all pairs: over every ordered pair of the validation images (1000 images, 999,000 pairs),
  exact given the digit posteriors, the value now;
- all pairs, last 3: the mean of that over the last three epochs;
- digits: digit accuracy on the validation images.

It prints the std of each over the runs (in points), its ratio to the pairs' std with a 95%
bootstrap interval (the runs resampled together, since every score of a run comes from the
same net, and the candidate's run r shares run r's seeds), and the cost per trial of scoring
every epoch on all pairs (runs with it and without it, alternated).

A candidate value is measured beside it on the same seeds and splits: `--nets K` nets of the
configuration trained side by side for `--short-epochs` epochs each, scored as their ensemble
(the mean of their digit posteriors) over all pairs, and its cost per trial against one net's.

    python benchmarks/noise.py [--runs 8] [--epochs 20] [--nets 2] [--short-epochs 12]
"""

from __future__ import annotations

import argparse
import multiprocessing
import random
import statistics
import time

import torch

from data import load_source, make_splits
from models import Config, train
from search.study.objective import trial_seed

SCORES = ("pairs", "all pairs", "all pairs, last 3", "digits")
Run = tuple[dict[str, float], float]


def one_run(job: tuple[int, int, int, bool, int]) -> Run:
    split_seed, train_seed, epochs, all_pairs, nets = job
    torch.set_num_threads(1)
    splits = make_splits(load_source("mnist5k"), seed=split_seed)
    start = time.perf_counter()
    result = train(
        Config(epochs=epochs, ensemble=nets),
        splits.train,
        {"val": splits.val},
        mean=splits.mean,
        std=splits.std,
        seed=train_seed,
        device=torch.device("cpu"),
        threads=1,
        all_pairs=all_pairs,
    )
    seconds = time.perf_counter() - start
    last = result.history[-1]
    scores = {"pairs": last.accuracy["val"], "digits": last.digits["val"]}
    if all_pairs:
        scores["all pairs"] = last.all_pairs["val"]
        scores["all pairs, last 3"] = statistics.mean(
            h.all_pairs["val"] for h in result.history[-3:]
        )
    return scores, seconds


def std_points(values: list[float]) -> float:
    return 100 * statistics.stdev(values)


def ratio_interval(
    values: list[float], base: list[float], draws: int = 2000
) -> tuple[float, float]:
    """95% bootstrap interval of std(values) / std(base), resampling the runs in pairs."""
    rng = random.Random(0)
    n = len(values)
    ratios = []
    for _ in range(draws):
        pick = [rng.randrange(n) for _ in range(n)]
        b = statistics.stdev(base[i] for i in pick)
        if b > 0:
            ratios.append(statistics.stdev(values[i] for i in pick) / b)
    ratios.sort()
    return ratios[int(0.025 * len(ratios))], ratios[int(0.975 * len(ratios)) - 1]


def seconds(costs: list[Run], jobs: list[tuple], want: tuple) -> float:
    """Median seconds of the cost runs whose (all_pairs, nets) is `want`."""
    return statistics.median(
        c[1] for c, job in zip(costs, jobs, strict=True) if (job[3], job[4]) == want
    )


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--runs", type=int, default=8, help="runs per regime (default: 8)")
    p.add_argument("--epochs", type=int, default=20, help="epochs per run (default: 20)")
    p.add_argument(
        "--cost-runs", type=int, default=4, help="runs of each for the cost (default: 4)"
    )
    p.add_argument("--nets", type=int, default=2, help="nets of the candidate (default: 2)")
    p.add_argument(
        "--short-epochs", type=int, default=12, help="epochs of the candidate (default: 12)"
    )
    args = p.parse_args()
    seeds = [(0, trial_seed(0, r)) for r in range(args.runs)]
    splits = [(r, trial_seed(r, 0)) for r in range(args.runs)]
    regimes = {"seeds (split fixed)": seeds, "splits and seeds": splits}
    one = (args.epochs, True, 1)
    candidate = (args.short_epochs, True, args.nets)
    cost_jobs = [
        (0, r, *kind)
        for r in range(args.cost_runs)
        for kind in (one, (args.epochs, False, 1), candidate)
    ]
    workers = max(1, (multiprocessing.cpu_count() or 1))
    with multiprocessing.get_context("spawn").Pool(workers) as pool:
        results = {
            name: pool.map(one_run, [(*s, *one) for s in ss]) for name, ss in regimes.items()
        }
        candidates = {
            name: pool.map(one_run, [(*s, *candidate) for s in ss]) for name, ss in regimes.items()
        }
        costs = pool.map(one_run, cost_jobs)
    print(
        f"default Config, {args.epochs} epochs, {args.runs} runs per regime, mnist5k "
        "(1000 training pairs, 500 validation pairs); std over runs in points"
    )
    name_k = f"{args.nets} nets x {args.short_epochs} ep, all pairs"
    print(f"{'score':<30}" + "".join(f"{name:>36}" for name in results))
    for score in (*SCORES, name_k):
        cells, means = [], []
        for name, runs in results.items():
            base = [r[0]["pairs"] for r in runs]
            source, key = (candidates[name], "all pairs") if score == name_k else (runs, score)
            values = [r[0][key] for r in source]
            std = std_points(values)
            if score == "pairs":
                cells.append(f"{std:.2f}")
            else:
                low, high = ratio_interval(values, base)
                ratio = std / std_points(base)
                cells.append(f"{std:.2f} ({ratio:.2f}x [{low:.2f}, {high:.2f}])")
            means.append(f"{100 * statistics.mean(values):.2f}")
        print(f"{score:<30}" + "".join(f"{c:>36}" for c in cells))
        print(f"{'  mean %':<30}" + "".join(f"{m:>36}" for m in means))
    with_all = seconds(costs, cost_jobs, (True, 1))
    without = seconds(costs, cost_jobs, (False, 1))
    nets = seconds(costs, cost_jobs, (True, args.nets))
    print(
        f"seconds per trial (median of {args.cost_runs}, 1 thread, {workers} at a time): "
        f"all pairs scored every epoch {with_all:.2f} s, pairs only {without:.2f} s: "
        f"{with_all / without:.2f}x; {name_k} {nets:.2f} s: {nets / without:.2f}x"
    )


if __name__ == "__main__":
    main()
