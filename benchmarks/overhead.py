"""Benchmark: the search's own cost per trial (sampler, pruner, storage, slot lock) as a share
of the trial's time, for the default storages and PostgreSQL.

Each storage gets a study; trials are taken by the real worker loop (search.worker.run_trials
with the default TPE sampler and median pruner), one trial at a time, alternating between the
storages. A trial's overhead is its wall time in the loop minus its training time (the epochs'
own measured seconds), so model construction counts as overhead too: an upper bound on
sampler + storage. Medians over the trials.

TPE's cost grows with the study's history; --history copies the finished trials of an existing
study (e.g. a finished 200-trial search) into every study first, to measure the late-search cost.

    python benchmarks/overhead.py [--trials 6] [--epochs 20] [--history studies/digit-pairs.journal]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import threading
import time
import uuid

import optuna
import psycopg
from optuna.trial import TrialState

from data import load_source, make_splits
from models import resolve_device
from search.objective import Objective
from search.storage import SlotLock, StorageSpec, find_storage, open_storage, parse_storage
from search.strategies import make_pruner, make_sampler
from search.worker import run_trials

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


def history(source: str | None, study: str) -> list[optuna.trial.FrozenTrial]:
    if source is None:
        return []
    loaded = optuna.load_study(
        study_name=study, storage=open_storage(find_storage(study, source), create=False)
    )
    return loaded.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--trials", type=int, default=6, help="timed trials per storage (default: 6)")
    p.add_argument("--epochs", type=int, default=20, help="epochs (default: 20, the search's)")
    p.add_argument("--history", default=None, help="storage whose finished trials seed each study")
    p.add_argument("--history-study", default="digit-pairs", help="its study name")
    p.add_argument("--seed", type=int, default=0)
    args = p.parse_args()
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    past = history(args.history, args.history_study)
    splits = make_splits(load_source("mnist5k", None), seed=args.seed, n_train=1000)
    objective = Objective(
        splits,
        epochs=args.epochs,
        seed=args.seed,
        device=resolve_device("auto"),
        threads=1,
        stop=threading.Event(),
    )
    db = f"bench_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{db}"')
    try:
        with tempfile.TemporaryDirectory() as tmp:
            specs = {
                "journal (default, 2 workers)": parse_storage(f"{tmp}/bench.journal"),
                "sqlite (default, 1 worker)": parse_storage(f"sqlite:///{tmp}/bench.db"),
                "postgresql": parse_storage(f"postgresql+psycopg://postgres@127.0.0.1:5432/{db}"),
            }
            shares = measure(args, specs, past, objective)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    print(
        f"{args.trials} trials per storage, {args.epochs} epochs, 1 thread, "
        f"{len(past)} trials of history; medians"
    )
    print(f"{'storage':>28}  {'trial s':>7}  {'overhead s':>10}  {'share':>6}")
    for name, rows in shares.items():
        wall = statistics.median(r[0] for r in rows)
        over = statistics.median(r[1] for r in rows)
        share = statistics.median(r[1] / r[0] for r in rows)
        print(f"{name:>28}  {wall:>7.2f}  {over:>10.3f}  {share:>6.1%}")
    print("target: share <= 3%")


def measure(
    args: argparse.Namespace,
    specs: dict[str, StorageSpec],
    past: list[optuna.trial.FrozenTrial],
    objective: Objective,
) -> dict[str, list[tuple[float, float]]]:
    studies = {}
    for name, spec in specs.items():
        study = optuna.create_study(
            study_name="bench",
            storage=open_storage(spec),
            direction="maximize",
            sampler=make_sampler("tpe", seed=args.seed, parallel=True),
            pruner=make_pruner("median", epochs=args.epochs),
        )
        study.add_trials(past)
        studies[name] = (study, SlotLock(spec, "bench"))
    shares: dict[str, list[tuple[float, float]]] = {name: [] for name in specs}
    for i in range(args.trials):
        for name, (study, lock) in studies.items():  # alternating: A, B, C, A, B, C, ...
            start = time.perf_counter()
            run_trials(study, objective, target=len(past) + i + 1, lock=lock, deadline=None)
            wall = time.perf_counter() - start
            last = study.get_trials(deepcopy=False)[-1]
            training = last.user_attrs["seconds_per_epoch"] * len(last.intermediate_values)
            shares[name].append((wall, wall - training))
    return shares


if __name__ == "__main__":
    main()
