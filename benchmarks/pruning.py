"""Benchmark: epochs trained with the default pruner vs no pruning, same sampler seed.

Two real searches (`python -m search.run`, one worker each, so each is reproducible from its
seed) run side by side, one thread each; the only difference is --pruner. Epoch counts and
accuracies do not depend on timing, so running them at the same time is fair.

    python benchmarks/pruning.py [--trials 100] [--epochs 20] [--seed 0] [--pruner median]
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.study.strategies import DEFAULT_PRUNER


def storage_url(folder: Path, pruner: str) -> str:
    return f"sqlite:///{folder / pruner}.db"


def launch(args: argparse.Namespace, pruner: str, folder: Path) -> subprocess.Popen[bytes]:
    cmd = [
        sys.executable,
        "-m",
        "search.run",
        "--study",
        pruner,
        "--storage",
        storage_url(folder, pruner),
        "--trials",
        str(args.trials),
        "--epochs",
        str(args.epochs),
        "--seed",
        str(args.seed),
        "--pruner",
        pruner,
        "--workers",
        "1",
        "--threads",
        "1",
        "--finalists",  # the search alone, without the race after it
        "0",
    ]
    with (folder / f"{pruner}.log").open("wb") as log:  # the child keeps its own copy
        return subprocess.Popen(cmd, cwd=folder, stdout=log, stderr=subprocess.STDOUT)


def facts(folder: Path, pruner: str) -> dict[str, float]:
    study = optuna.load_study(study_name=pruner, storage=storage_url(folder, pruner))
    trials = study.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    return {
        "trials": len(trials),
        "pruned": sum(t.state == TrialState.PRUNED for t in trials),
        "epochs": sum(len(t.intermediate_values) for t in trials),
        "best": study.best_value,
        "best_trial": study.best_trial.number,
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=100, help="trials per search (default: 100)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default: 20, the search's)")
    p.add_argument("--seed", type=int, default=0, help="sampler and study seed (default: 0)")
    p.add_argument(
        "--pruner", default=DEFAULT_PRUNER, help="compared with none (default: %(default)s)"
    )
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        folder = Path(tmp)
        start = time.perf_counter()
        procs = {name: launch(args, name, folder) for name in (args.pruner, "none")}
        for name, proc in procs.items():
            if proc.wait() != 0:
                sys.exit(f"the {name} search failed:\n{(folder / f'{name}.log').read_text()}")
        wall = time.perf_counter() - start
        rows = {name: facts(folder, name) for name in procs}
    print(
        f"{args.trials} trials x {args.epochs} epochs, TPE seed {args.seed}, "
        f"side by side in {wall:.0f} s"
    )
    print(f"{'pruner':>8}  {'pruned':>6}  {'epochs':>6}  {'best val %':>10}  {'best trial':>10}")
    for name, r in rows.items():
        print(
            f"{name:>8}  {r['pruned']:>6}  {r['epochs']:>6}  {100 * r['best']:>10.2f}"
            f"  {r['best_trial']:>10}"
        )
    a, b = rows[args.pruner], rows["none"]
    print(
        f"epochs {args.pruner} / none: {a['epochs'] / b['epochs']:.0%} (target <= 40%); "
        f"best val difference: {100 * (a['best'] - b['best']):+.2f} points (target within 0.5)"
    )


if __name__ == "__main__":
    main()
