"""Benchmark: the search's own cost per trial (sampler, pruner, storage, slot lock) as a share
of the trial's time, for the default storages and PostgreSQL.

Each storage gets a study; trials are taken by the real worker loop (search.execution.run_trials
with the default TPE sampler and pruner), one trial at a time, alternating between the
storages. Every method of the study's storage, sampler and pruner, and the slot lock, is timed
where the worker calls it (outermost calls on the worker's thread only, so a sampler reading the
storage is counted once and the heartbeat thread is left out): that sum is the search's cost.
A trial's time is its wall time in the loop. The table also gives the rest that is not
training (model construction, moving data, the final train-accuracy pass). Medians over trials.

TPE's cost grows with the study's history; --history copies the finished trials of an existing
study (e.g. a finished 200-trial search) into every study first, to measure the late-search cost.

    python benchmarks/overhead.py [--trials 6] [--epochs 20] [--history studies/digit-pairs.journal]
"""

from __future__ import annotations

import argparse
import functools
import statistics
import tempfile
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable
from typing import Any

import optuna
import psycopg
from optuna.trial import TrialState

from data import load_source
from models import resolve_device
from search.execution.handle import StudyHandle
from search.execution.loop import run_trials
from search.storage import SlotLock, StorageSpec, find_storage, open_storage
from search.storage.spec import parse_storage
from search.study import Objective, Plan, SearchData, StudySettings, is_race
from search.study.strategies import DEFAULT_PRUNER, make_pruner, make_sampler

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
# Every public storage method, RDBStorage's heartbeat ones included (what fail_stale_trials
# does through Optuna's private methods counts as "other").
STORAGE_METHODS = sorted(
    {
        n
        for base in (optuna.storages.BaseStorage, optuna.storages.RDBStorage)
        for n in dir(base)
        if not n.startswith("_")
    }
)
SAMPLER_METHODS = [n for n in dir(optuna.samplers.BaseSampler) if not n.startswith("_")]


class Clock:
    """Sums the time spent in wrapped calls, counting only the outermost call on one thread."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.depth = 0
        self.seconds = 0.0
        self.by_call: Counter[str] = Counter()  # over the whole run, outermost calls

    def wrap(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        @functools.wraps(fn)
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return fn(*args, **kwargs)
            self.depth += 1
            start = time.perf_counter()
            try:
                return fn(*args, **kwargs)
            finally:
                self.depth -= 1
                if self.depth == 0:
                    elapsed = time.perf_counter() - start
                    self.seconds += elapsed
                    self.by_call[name] += elapsed

        return timed

    def instrument(self, obj: object, names: list[str]) -> None:
        """Time these methods of this one object (its class and isinstance checks unchanged)."""
        for name in names:
            if hasattr(obj, name):
                setattr(obj, name, self.wrap(getattr(obj, name), name))


class TimedSlotLock(SlotLock):
    """The real slot lock; taking and releasing it counts as the search's cost."""

    def __init__(self, spec: StorageSpec, study: str, clock: Clock) -> None:
        super().__init__(spec, study)
        self.clock = clock

    def __enter__(self) -> None:
        self.clock.wrap(super().__enter__, "slot lock")()

    def __exit__(self, *exc: object) -> None:
        self.clock.wrap(super().__exit__, "slot lock")(*exc)


def history(source: str | None, study: str) -> list[optuna.trial.FrozenTrial]:
    if source is None:
        return []
    loaded = optuna.load_study(
        study_name=study, storage=open_storage(find_storage(study, source), create=False)
    )
    finished = loaded.get_trials(states=(TrialState.COMPLETE, TrialState.PRUNED))
    return [t for t in finished if not is_race(t)]  # the search's trials, not the race's


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
    settings = StudySettings(seed=args.seed, epochs=args.epochs)
    objective = Objective(
        SearchData.of(load_source("mnist5k", None), settings),
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
            rows, clocks = measure(args, specs, past, objective)
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE "{db}" WITH (FORCE)')
    print(
        f"{args.trials} trials per storage, {args.epochs} epochs, 1 thread, "
        f"{len(past)} trials of history; medians"
    )
    print(
        f"{'storage':>28}  {'trial s':>7}  {'search s':>8}  {'share':>6}  {'other s':>7}"
        f"  {'all trials':>10}"
    )
    for name, measured in rows.items():
        wall = statistics.median(r[0] for r in measured)
        search = statistics.median(r[1] for r in measured)
        share = statistics.median(r[1] / r[0] for r in measured)
        other = statistics.median(r[2] for r in measured)
        total = sum(r[1] for r in measured) / sum(r[0] for r in measured)
        print(
            f"{name:>28}  {wall:>7.2f}  {search:>8.3f}  {share:>6.1%}  {other:>7.3f}"
            f"  {total:>10.1%}"
        )
    print("search = sampler + pruner + storage + slot lock; other = not training, not search;")
    print("share = median over trials of search / trial; all trials = their sums' ratio")
    print("largest search costs, mean seconds per trial:")
    for name, clock in clocks.items():
        top = ", ".join(f"{call} {s / args.trials:.3f}" for call, s in clock.by_call.most_common(4))
        print(f"{name:>28}  {top}")
    print("target: share <= 3%")


def measure(
    args: argparse.Namespace,
    specs: dict[str, StorageSpec],
    past: list[optuna.trial.FrozenTrial],
    objective: Objective,
) -> tuple[dict[str, list[tuple[float, float, float]]], dict[str, Clock]]:
    """Per storage and trial: (trial wall s, search s, other s); and each storage's clock."""
    studies = {}
    for name, spec in specs.items():
        storage = open_storage(spec)
        study = optuna.create_study(
            study_name="bench",
            storage=storage,
            direction="maximize",
            sampler=make_sampler("tpe", seed=args.seed, parallel=True),
            pruner=make_pruner(DEFAULT_PRUNER, epochs=args.epochs),
        )
        study.add_trials(past)
        clock = Clock()
        clock.instrument(storage, STORAGE_METHODS)
        clock.instrument(study.sampler, SAMPLER_METHODS)
        clock.instrument(study.pruner, ["prune"])
        studies[name] = (StudyHandle.of(study, storage), TimedSlotLock(spec, "bench", clock), clock)
    rows: dict[str, list[tuple[float, float, float]]] = {name: [] for name in specs}
    for i in range(args.trials):
        for name, (handle, lock, clock) in studies.items():  # alternating: A, B, C, A, B, C, ...
            study = handle.study
            clock.seconds = 0.0
            start = time.perf_counter()
            plan = Plan(trials=len(past) + i + 1, finalists=0, seeds=1)  # search trials only
            run_trials(handle, objective, plan=plan, lock=lock, deadline=None)
            wall, search = time.perf_counter() - start, clock.seconds
            last = study.get_trials(deepcopy=False)[-1]
            training = last.user_attrs["seconds_per_epoch"] * len(last.intermediate_values)
            rows[name].append((wall, search, wall - training - search))
    return rows, {name: clock for name, (_, _, clock) in studies.items()}


if __name__ == "__main__":
    main()
