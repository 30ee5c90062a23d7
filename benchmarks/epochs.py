"""Benchmark: what the search's gain means. The default configuration and the selections of
finished studies, each trained for a study's epoch budget and for a longer one, on the final
evaluation's rounds.

For each round r of `--seed` (the rounds `search.final_eval --seed S` draws: 1000 training pairs,
1000 test pairs from images no search saw), one net of each configuration is trained for each
of `--epochs` (the cosine schedule spans each run's own epochs, as a study with that budget
trains) and scored once on the round's test pairs. The selections are each study's own (the
race's, as `search.final_eval` takes them). Prints test accuracy per configuration and budget,
the paired gain of the longer training, and each selection's gain over the default at each
budget, all paired over the rounds with 95% intervals.

    python benchmarks/epochs.py --studies DIR [DIR ...] [--rounds 10] [--epochs 20 100]
"""

from __future__ import annotations

import argparse
import itertools
import os
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from data import load_source, make_splits
from models import Config, train
from models.scoring import Tensors, evaluate, uses_channels_last
from search.evaluation.rounds import TEST_PAIRS, round_seed
from search.evaluation.stats import paired
from search.storage import find_storage, open_storage
from search.study import pick_trial, replay


def selection_of(folder: Path) -> tuple[str, Config]:
    """A finished study's selection (the default study under `folder`/studies), by its trial."""
    cwd = Path.cwd()
    os.chdir(folder)
    try:
        storage = open_storage(find_storage("digit-pairs", None), create=False, writes=False)
        study = optuna.load_study(study_name="digit-pairs", storage=storage)
        trial, _ = pick_trial(study, None)
        return f"{folder.name} #{trial.number}", replay(trial, epochs=1)
    finally:
        os.chdir(cwd)


def one_net(job: tuple[Config, int]) -> float:
    """Test accuracy of one net of `config` trained on the round with seed `seed`."""
    config, seed = job
    torch.set_num_threads(1)
    splits = make_splits(load_source("mnist5k"), seed=seed, n_train=1000, n_val=0,
                         n_test=TEST_PAIRS)  # fmt: skip
    assert splits.test is not None
    result = train(config, splits.train, {}, mean=splits.mean, std=splits.std, seed=seed,
                   device=torch.device("cpu"))  # fmt: skip
    test = Tensors.of(splits.test, splits.mean, splits.std, torch.device("cpu"))
    return evaluate(result.nets[0], test, uses_channels_last(config)).comparison


def pct(s: object) -> str:
    return f"{100 * s.mean:+.2f} [{100 * s.low:+.2f}, {100 * s.high:+.2f}]"  # type: ignore[attr-defined]


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--studies", type=Path, nargs="+", required=True,
                   help="folders of finished main jobs (studies/ inside each)")  # fmt: skip
    p.add_argument("--rounds", type=int, default=10, help="rounds (default: 10)")
    p.add_argument("--seed", type=int, default=0, help="the evaluation's --seed (default: 0)")
    p.add_argument("--epochs", type=int, nargs="+", default=[20, 100],
                   help="epoch budgets, the study's first (default: 20 100)")  # fmt: skip
    p.add_argument("--workers", type=int, default=2, help="processes (default: 2)")
    args = p.parse_args()
    configs = {"default": Config(), **dict(selection_of(f) for f in args.studies)}
    seeds = [round_seed(args.seed, r) for r in range(args.rounds)]
    jobs = [(name, epochs, seed) for name, epochs, seed
            in itertools.product(configs, args.epochs, seeds)]  # fmt: skip
    start = time.time()
    with ProcessPoolExecutor(args.workers) as pool:
        work = [(replace(configs[n], epochs=e), s) for n, e, s in jobs]
        accuracy = dict(zip(jobs, pool.map(one_net, work), strict=True))
    acc = {(n, e): [accuracy[n, e, s] for s in seeds] for n in configs for e in args.epochs}
    short, long = args.epochs[0], args.epochs[-1]
    print(f"{args.rounds} rounds of --seed {args.seed}, one net each, mnist5k; test accuracy %, "
          f"gains in points with 95% intervals paired over the rounds "
          f"({(time.time() - start) / 60:.0f} minutes)")  # fmt: skip
    header = [f"{e} epochs" for e in args.epochs]
    print(" | ".join(["configuration", *header, f"{long} - {short} epochs",
                      f"- default at {short}", f"- default at {long}"]))  # fmt: skip
    for name, config in configs.items():
        cells = [f"{100 * sum(acc[name, e]) / len(seeds):.2f}" for e in args.epochs]
        cells.append(pct(paired(acc[name, long], acc[name, short])))
        for e in (short, long):
            cells.append("" if name == "default" else pct(paired(acc[name, e], acc["default", e])))
        params = f" ({config.family}, {config.nb_filters} filters, batch {config.batch_size})"
        print(" | ".join([name + params, *cells]))
    for name in configs:
        if name != "default":
            versus = paired(acc[name, short], acc["default", long])
            print(f"{name} at {short} epochs - default at {long}: {pct(versus)}")


if __name__ == "__main__":
    main()
