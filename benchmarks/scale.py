"""Benchmark: how the search's own cost grows with the study's history and its workers.

Real worker processes run the project's worker loop (search.execution.run_trials: the slot
lock, fail_stale_trials, the plan, ask and tell with retries, heartbeats), its storage code,
TPE sampler and percentile pruner on a study of the real search space; only the training is
replaced by a seeded synthetic learning curve (--epoch-ms of sleep an epoch), so thousands of
trials fit in minutes. Each cell is a study copied from a prepared one of 200 / 2,000 / 10,000
finished trials (random configurations with learning curves, about half of them stopped early,
as pruned), on PostgreSQL, on the journal file and (`grpc`) on PostgreSQL through Optuna's gRPC
storage proxy (`run_grpc_proxy_server` in a process of its own, serving the database through
Optuna's cached storage; the workers' studies on `GrpcStorageProxy`, their slot lock still a
PostgreSQL advisory lock; the proxy carries no heartbeats, so those workers beat and check for
stale trials not at all), with 1 / 8 / 32 workers taking --trials more. Per trial (the
workers' mean, exclusive times on the worker's own thread):

  take          fail stale trials, the slot lock, read the trials, plan, ask, claim
  sample        the sampler (TPE's relative and independent draws, before/after a trial)
  report/prune  trial.report and should_prune after each epoch (the pruner reads the history)
  tell          tell with its state and value
  params/attrs  the rest of the objective: the sampled parameters' and user attributes' writes

then finished trials per second over the cell (from the moment every worker has opened the
study and read its trials, which `open s` gives, the slowest worker's), the machine's CPU over
that span (`busy`: the share of all its cores in use; `cpu ms`: the CPU time of every process,
the database server's included, per trial taken), the most connections the cell's database had
open, and checks: the exact total, and no trial run twice.

    python benchmarks/scale.py [--history 200 2000 10000] [--workers 1 8 32] [--trials 64]
        [--per-worker 0] [--epoch-ms 10] [--storages postgresql journal grpc]
        [--profile postgresql:10000:1]
"""

from __future__ import annotations

import argparse
import cProfile
import importlib.util
import io
import itertools
import math
import multiprocessing
import os
import pstats
import random
import shutil
import sys
import tempfile
import threading
import time
import uuid
import warnings
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
import psycopg
import torch
from optuna.storages import GrpcStorageProxy, get_storage, run_grpc_proxy_server
from optuna.trial import FrozenTrial, TrialState

from data import load_source
from models import Config, EpochStats, TrainResult, parameter_count
from search.execution import loop as trial_loop
from search.execution.handle import StudyHandle
from search.execution.loop import run_trials
from search.storage import SlotLock, open_storage
from search.storage.spec import parse_storage
from search.study import Objective, Plan, SearchData, StudySettings
from search.study.space import suggest_config
from search.study.strategies import DEFAULT_PRUNER, make_pruner, make_sampler, warmup_epochs

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # harness
from harness.ports import free_port

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
PG_URL = "postgresql+psycopg://postgres@127.0.0.1:5432/{db}"
STUDY = "scale"
PHASES = ("take", "sample", "report/prune", "tell", "params/attrs")
SAMPLER_METHODS = (
    "infer_relative_search_space",
    "sample_relative",
    "sample_independent",
    "before_trial",
    "after_trial",
)


def curve(config: Config, seed: int, epochs: int) -> list[float]:
    """A learning curve that depends on the configuration (so TPE has something to learn) and
    on the trial's seed: rises towards a plateau near 0.97 for a learning rate near 1e-3."""
    rng = random.Random(seed)
    top = 0.97 - 0.03 * abs(math.log10(config.lr) + 3) - 0.02 * config.dropout**2
    return [
        top - (top - 0.5) * math.exp(-epoch / 3) + rng.gauss(0, 0.004)
        for epoch in range(1, epochs + 1)
    ]


class SyntheticObjective(Objective):
    """The search's objective (sampling, attributes, reports, pruning, stops) around a
    synthetic curve in place of training."""

    def __init__(self, data: SearchData, *, epoch_seconds: float, phases: Phases) -> None:
        super().__init__(data, device=torch.device("cpu"), threads=1)
        self.epoch_seconds = epoch_seconds
        self.phases = phases

    def __call__(self, trial: optuna.Trial) -> float:
        return self.phases.wrap(super().__call__, "params/attrs")(trial)

    def fit(
        self, config: Config, splits: Any, seed: int, on_epoch: Callable[[EpochStats], None]
    ) -> TrainResult:
        result = TrainResult(train_accuracy=0.99)
        report = self.phases.wrap(on_epoch, "report/prune")
        sleep = self.phases.wrap(time.sleep, "training")  # the training, on no phase's clock
        for epoch, value in enumerate(curve(config, seed, config.epochs), start=1):
            sleep(self.epoch_seconds)
            stats = EpochStats(
                epoch=epoch,
                train_loss=1 - value,
                accuracy={"val": value},
                seconds=self.epoch_seconds,
                all_pairs={"val": value},
            )
            result.history.append(stats)
            report(stats)
        return result


class Phases:
    """Exclusive time per phase on one thread: a wrapped call's own time, less the time of the
    wrapped calls inside it; time outside every wrapped call is not counted."""

    def __init__(self) -> None:
        self.thread = threading.get_ident()
        self.stack: list[list[float]] = []  # [start, seconds of wrapped calls inside]
        self.seconds: Counter[str] = Counter()

    def wrap(self, fn: Callable[..., Any], name: str) -> Callable[..., Any]:
        def timed(*args: Any, **kwargs: Any) -> Any:
            if threading.get_ident() != self.thread:
                return fn(*args, **kwargs)
            frame = [time.perf_counter(), 0.0]
            self.stack.append(frame)
            try:
                return fn(*args, **kwargs)
            finally:
                self.stack.pop()
                elapsed = time.perf_counter() - frame[0]
                self.seconds[name] += elapsed - frame[1]
                if self.stack:
                    self.stack[-1][1] += elapsed

        return timed


@dataclass(frozen=True)
class Cell:
    storage: str  # "postgresql", "journal" or "grpc" (PostgreSQL through the proxy)
    history: int
    workers: int
    trials: int  # taken in the cell
    epochs: int
    epoch_seconds: float
    optuna_pruner: bool = False

    @property
    def name(self) -> str:
        return f"{self.storage}:{self.history}:{self.workers}"


def worker(
    cell: Cell,
    where: str,
    proxy: int | None,
    index: int,
    ready: Any,
    go: Any,
    out: Any,
    profile: bool,
) -> None:
    """One worker process: open the study as a worker does (or, with `proxy`, on the gRPC
    storage proxy at that port), wait for the others, run trials until the study has its
    total, and send back its phase times and trial numbers."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    opened = time.perf_counter()
    spec = parse_storage(where)
    storage: optuna.storages.BaseStorage
    if proxy is None:
        storage = open_storage(spec, create=False)
    else:
        with warnings.catch_warnings():  # experimental in Optuna: said once, in the docstring
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            storage = GrpcStorageProxy(host="127.0.0.1", port=proxy)
        storage.wait_server_ready(timeout=60)
    settings = StudySettings(seed=0, epochs=cell.epochs)
    study = optuna.load_study(
        study_name=STUDY,
        storage=storage,
        sampler=make_sampler("tpe", seed=1000 + index, parallel=True),
        pruner=pruner(cell, settings.trial_budget),
    )
    study.get_trials(deepcopy=False)  # a running worker has read the history once already
    phases = Phases()
    data = SearchData.of(load_source("mnist5k", None), settings)
    objective = SyntheticObjective(data, epoch_seconds=cell.epoch_seconds, phases=phases)
    objective.data.splits()
    for name in SAMPLER_METHODS:
        setattr(study.sampler, name, phases.wrap(getattr(study.sampler, name), "sample"))
    trial_loop.take_trial = phases.wrap(trial_loop.take_trial, "take")
    trial_loop.finish_trial = phases.wrap(trial_loop.finish_trial, "tell")
    numbers: list[int] = []
    finished: list[float] = []

    def on_trial(trial: FrozenTrial) -> None:
        numbers.append(trial.number)
        finished.append(time.time())

    ready.put((index, time.perf_counter() - opened))
    go.wait()
    profiler = cProfile.Profile() if profile else None
    if profiler is not None:
        profiler.enable()
    run_trials(
        StudyHandle.of(study, storage),
        objective,
        plan=Plan(trials=cell.history + cell.trials, finalists=0, seeds=1),
        lock=SlotLock(spec, STUDY),
        deadline=None,
        on_trial=on_trial,
    )
    text = ""
    if profiler is not None:
        profiler.disable()
        buffer = io.StringIO()
        stats = pstats.Stats(profiler, stream=buffer).sort_stats("cumulative")
        stats.print_stats(25)
        stats.print_callees(r"\(take_trial\)")  # what a take spends, under the slot lock or not
        text = buffer.getvalue()
    out.put((index, dict(phases.seconds), numbers, finished, text))


def serve(url: str, port: int) -> None:
    """The gRPC storage proxy in front of the database, as Optuna's documentation runs it."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    run_grpc_proxy_server(get_storage(url), host="127.0.0.1", port=port)


def pruner(cell: Cell, epochs: int) -> optuna.pruners.BasePruner:
    """The search's default pruner, or (--pruners optuna) Optuna's PercentilePruner with the
    same settings, which reads the completed trials at every epoch."""
    if not cell.optuna_pruner:
        return make_pruner(DEFAULT_PRUNER, epochs=epochs)
    return optuna.pruners.PercentilePruner(
        25.0, n_startup_trials=5, n_warmup_steps=warmup_epochs(epochs)
    )


def make_history(n: int, epochs: int, seed: int = 0, *, stored: bool = False) -> list[FrozenTrial]:
    """`n` finished search trials of random configurations: their curves to the end (40%) or
    cut after the pruner's warm-up at a random epoch (pruned). `stored`: with every attribute a
    trained trial stores (seed, parameter count, worker, accuracies), not only its epoch time."""
    study = optuna.create_study(
        direction="maximize", sampler=optuna.samplers.RandomSampler(seed=seed)
    )
    rng = random.Random(seed)
    warmup = max(1, epochs // 4)
    for _ in range(n):
        trial = study.ask()
        config = suggest_config(trial, epochs=epochs)
        values = curve(config, rng.randrange(2**31), epochs)
        stop = epochs if rng.random() < 0.4 else rng.randint(warmup, epochs - 1)
        if stored:
            trial.set_user_attr("seed", rng.randrange(2**31))
            trial.set_user_attr("n_params", parameter_count(config))
            trial.set_user_attr("worker", "bench:1")
        for epoch in range(1, stop + 1):
            trial.report(values[epoch - 1], epoch)
        trial.set_user_attr("seconds_per_epoch", 0.3 if stored else 0.0)
        if stop < epochs:
            study.tell(trial, state=TrialState.PRUNED)
            continue
        if stored:
            trial.set_user_attr("train_accuracy", 0.99)
            trial.set_user_attr("val_pairs_accuracy", values[-1])
            trial.set_user_attr("value_over", "all pairs")
        study.tell(trial, values[-1])
    return study.get_trials()


class Stores:
    """The prepared studies (one per history size and storage) and a fresh copy per cell."""

    def __init__(self, tmp: Path, epochs: int) -> None:
        self.tmp, self.epochs = tmp, epochs
        self.databases: list[str] = []
        self.prepared: dict[tuple[str, int], str] = {}  # (storage, history) -> db name or path

    @staticmethod
    def backing(storage: str) -> str:
        """Where a cell's study lives: the proxy's cells use PostgreSQL's studies."""
        return "postgresql" if storage == "grpc" else storage

    def prepare(self, storage: str, sizes: list[int]) -> dict[int, float]:
        """Studies of each size, each made from the one before it plus the trials it lacks;
        returns the seconds each took."""
        trials = make_history(max(sizes), self.epochs)
        took, previous, have = {}, None, 0
        for size in sorted(sizes):
            start = time.perf_counter()
            where = self.new(storage, previous)
            store = open_storage(parse_storage(self.url(storage, where)))
            if previous is None:
                optuna.create_study(study_name=STUDY, storage=store, direction="maximize")
            study = optuna.load_study(study_name=STUDY, storage=store)
            study.add_trials(trials[have:size])
            dispose(store)
            self.prepared[storage, size] = where
            took[size], previous, have = time.perf_counter() - start, where, size
        return took

    def new(self, storage: str, source: str | None = None) -> str:
        """A new journal file or database, empty or a copy of `source`."""
        if storage == "journal":
            target = str(self.tmp / f"{uuid.uuid4().hex[:8]}.journal")
            if source is not None:
                shutil.copyfile(source, target)
            return target
        name = f"scale_{uuid.uuid4().hex[:10]}"
        template = f' TEMPLATE "{source}"' if source is not None else ""
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'CREATE DATABASE "{name}"{template}')
        self.databases.append(name)
        return name

    def url(self, storage: str, where: str) -> str:
        return where if storage == "journal" else PG_URL.format(db=where)

    def cell_copy(self, storage: str, history: int) -> str:
        return self.new(self.backing(storage), self.prepared[self.backing(storage), history])

    def drop(self, storage: str, where: str) -> None:
        if storage == "journal":
            for path in Path(where).parent.glob(Path(where).name + "*"):
                path.unlink(missing_ok=True)
            return
        with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
            admin.execute(f'DROP DATABASE IF EXISTS "{where}" WITH (FORCE)')
        self.databases.remove(where)

    def close(self) -> None:
        for name in list(self.databases):
            self.drop("postgresql", name)


def dispose(storage: optuna.storages.BaseStorage) -> None:
    engine = getattr(storage, "engine", None)
    if engine is not None:
        engine.dispose()


def connections(db: str) -> int:
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        row = admin.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = %s", (db,)
        ).fetchone()
    return int(row[0]) if row else 0


def cpu_times() -> tuple[float, float]:
    """The machine's (busy, total) CPU seconds since boot, every core and process together."""
    fields = [int(v) for v in Path("/proc/stat").read_text().split("\n")[0].split()[1:9]]
    idle = fields[3] + fields[4]  # idle and iowait
    tick = os.sysconf("SC_CLK_TCK")
    return (sum(fields) - idle) / tick, sum(fields) / tick


def run_cell(cell: Cell, stores: Stores, profile: bool) -> dict[str, Any]:
    where = stores.cell_copy(cell.storage, cell.history)
    url = stores.url(cell.storage, where)
    ctx = multiprocessing.get_context("spawn")
    ready, out, go = ctx.Queue(), ctx.Queue(), ctx.Event()
    port = free_port() if cell.storage == "grpc" else None
    server = ctx.Process(target=serve, args=(url, port)) if port is not None else None
    procs = [
        ctx.Process(target=worker, args=(cell, url, port, i, ready, go, out, profile and i == 0))
        for i in range(cell.workers)
    ]
    everyone = [p for p in (server, *procs) if p is not None]
    for p in everyone:
        p.start()
    try:
        opened = [ready.get(timeout=900)[1] for _ in procs]
        peak, start, cpu_start = 0, time.time(), cpu_times()
        go.set()
        results = []
        while len(results) < len(procs):
            if cell.storage != "journal":
                peak = max(peak, connections(where))
            try:
                results.append(out.get(timeout=0.5))
            except Exception:  # queue.Empty: still running
                if not any(p.is_alive() for p in procs) and out.empty():
                    raise RuntimeError(f"{cell.name}: a worker died") from None
        cpu_end = cpu_times()
        for p in procs:
            p.join()
        store = open_storage(parse_storage(url), create=False)
        trials = optuna.load_study(study_name=STUDY, storage=store).get_trials(deepcopy=False)
        dispose(store)
    finally:
        for p in everyone:
            if p.is_alive():
                p.kill()
            p.join()
        stores.drop(Stores.backing(cell.storage), where)
    numbers = [n for r in results for n in r[2]]
    ends = [t for r in results for t in r[3]]
    phases: Counter[str] = Counter()
    for r in results:
        phases.update(r[1])
    taken = len(numbers)
    finished = sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in trials)
    return {
        "open": max(opened),
        "per_trial": {name: phases[name] / taken for name in PHASES},
        "rate": taken / (max(ends) - start),
        "busy": (cpu_end[0] - cpu_start[0]) / (cpu_end[1] - cpu_start[1]),
        "cpu_per_trial": (cpu_end[0] - cpu_start[0]) / taken,
        "connections": peak,
        "exact": finished == cell.history + cell.trials and len(trials) == finished,
        "once": len(numbers) == len(set(numbers)),
        "taken": taken,
        "profile": next((r[4] for r in results if r[4]), ""),
    }


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--history", type=int, nargs="+", default=[200, 2000, 10000])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 8, 32])
    p.add_argument("--storages", nargs="+", default=["postgresql", "journal"],
                   choices=["postgresql", "journal", "grpc"],
                   help="grpc: PostgreSQL through Optuna's gRPC storage proxy")  # fmt: skip
    p.add_argument("--trials", type=int, default=64, help="trials taken in each cell")
    p.add_argument("--per-worker", type=int, default=0, help="at least this many a worker")
    p.add_argument("--epochs", type=int, default=20, help="epochs a trial (default: 20)")
    p.add_argument("--epoch-ms", type=float, default=10.0, help="sleep an epoch (default: 10)")
    p.add_argument("--pruners", nargs="+", default=["ours"], choices=["ours", "optuna"],
                   help="ours, and/or optuna: its PercentilePruner, same settings")  # fmt: skip
    p.add_argument("--profile", default=None, help="STORAGE:HISTORY:WORKERS: profile worker 0")
    args = p.parse_args()
    if "grpc" in args.storages and importlib.util.find_spec("grpc") is None:
        p.error('--storages grpc needs grpcio and protobuf: pip install -e ".[bench]"')
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    with tempfile.TemporaryDirectory() as tmp:
        stores = Stores(Path(tmp), args.epochs)
        try:
            for storage in dict.fromkeys(map(Stores.backing, args.storages)):
                took = stores.prepare(storage, args.history)
                seconds = ", ".join(f"{s:.0f}" for s in took.values())
                sizes = ", ".join(map(str, took))
                print(f"{storage}: studies of {sizes} trials prepared in {seconds} s", flush=True)
            report(args, stores)
        finally:
            stores.close()


def report(args: argparse.Namespace, stores: Stores) -> None:
    print(
        f"{args.trials} trials taken a cell (at least {args.per_worker} a worker), "
        f"{args.epochs} epochs of {args.epoch_ms:g} ms; "
        "per-trial times in ms, the workers' mean"
    )
    head = "".join(f"{name:>13}" for name in (*PHASES, "sum"))
    cell = f"{'storage':>10} {'history':>7} {'workers':>7} {'pruner':>6}"
    print(f"{cell}{head}  {'trials/s':>8}  {'open s':>6}  {'busy':>5}  {'cpu ms':>6}  "
          f"{'conns':>5}  checks")  # fmt: skip
    profiles = []
    for storage in args.storages:
        for history in args.history:
            for workers, kind in itertools.product(args.workers, args.pruners):
                trials = max(args.trials, args.per_worker * workers)
                cell = Cell(storage, history, workers, trials, args.epochs, args.epoch_ms / 1000,
                            kind == "optuna")  # fmt: skip
                r = run_cell(cell, stores, profile=args.profile == cell.name)
                ms = [1000 * r["per_trial"][name] for name in PHASES]
                cols = "".join(f"{v:>13.1f}" for v in (*ms, sum(ms)))
                checks = ("exact total" if r["exact"] else "TOTAL WRONG") + (
                    ", each once" if r["once"] else ", A TRIAL RAN TWICE"
                )
                conns = r["connections"] if storage != "journal" else "-"
                print(f"{storage:>10} {history:>7} {workers:>7} {kind:>6}{cols}  {r['rate']:>8.2f}"
                      f"  {r['open']:>6.1f}  {r['busy']:>5.0%}  {1000 * r['cpu_per_trial']:>6.0f}"
                      f"  {conns:>5}  {checks}", flush=True)  # fmt: skip
                if r["profile"]:
                    profiles.append((cell.name, r["profile"]))
    for name, text in profiles:
        print(f"\nprofile of worker 0, {name} (cumulative):\n{text}")
    print(f"trial time without the search: {args.epochs * args.epoch_ms:.0f} ms (the sleep)")


if __name__ == "__main__":
    main()
