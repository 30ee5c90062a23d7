"""python -m search.run: create or resume a study and run trials until it has --trials finished.

--trials is the study's total, shared by all workers and across re-runs.
"""

from __future__ import annotations

import argparse
import multiprocessing
import os
import signal
import sys
import threading
import time
from dataclasses import replace
from functools import partial
from pathlib import Path

import optuna
from tqdm import tqdm

from data import DATASETS, DataError, load_source, make_splits
from models import DEVICES, resolve_device
from search.cli import (
    CORES,
    Parser,
    check_workers,
    fail,
    non_negative_int,
    positive_float,
    positive_int,
)
from search.errors import UsageError
from search.objective import Objective
from search.space import baselines
from search.storage import SlotLock, StorageSpec, default_storage, open_storage, owner_lock
from search.storage import parse_storage as parse_storage_flag
from search.strategies import DEFAULT_PRUNER, PRUNERS, SAMPLERS, make_pruner, make_sampler
from search.summary import summary
from search.trials import FINISHED, count, fail_running
from search.worker import (
    STORAGE_ERRORS,
    WorkerSettings,
    install_stop_handlers,
    run_trials,
    with_storage_retries,
    worker_id,
    worker_main,
)

PROG = "search.run"
# Measured on 2 cores (benchmarks/workers.py): two 1-thread processes finish 1.18-1.19x the trials
# per minute of one 2-thread process, so the default is one single-threaded worker per core.
DEFAULT_WORKERS = CORES
DEFAULT_EPOCHS = 20
STUDY_SETTINGS = ("dataset", "seed", "epochs", "train_pairs", "val_pairs")
NEW_STUDY_DEFAULTS = {
    "dataset": "mnist5k",
    "seed": 0,
    "epochs": DEFAULT_EPOCHS,
    "train_pairs": 1000,
}


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    p.add_argument(
        "--trials",
        type=positive_int,
        default=200,
        help="target total of finished (complete + pruned) trials (default: 200)",
    )
    p.add_argument("--study", default="digit-pairs", help="study name (default: digit-pairs)")
    p.add_argument(
        "--storage",
        default=None,
        help="sqlite:///FILE.db, postgresql+psycopg://USER@HOST:PORT/DB or FILE.journal "
        "(default: studies/STUDY.db for one worker, studies/STUDY.journal for more)",
    )
    p.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default="tpe",
        help="tpe (multivariate), random, qmc or gp (default: tpe)",
    )
    p.add_argument(
        "--pruner",
        choices=PRUNERS,
        default=DEFAULT_PRUNER,
        help="percentile (keeps the top 25%% at each epoch), median, hyperband or none; "
        "the first two keep every trial for a warm-up of 15%% of the epochs (default: %(default)s)",
    )
    p.add_argument(
        "--seed",
        type=non_negative_int,
        default=None,
        help="seed of the data split, sampler and trials (default: 0, or the study's)",
    )
    p.add_argument(
        "--timeout",
        type=positive_float,
        default=None,
        help="seconds after which no new trial starts (default: none)",
    )
    p.add_argument(
        "--dataset",
        choices=DATASETS,
        default=None,
        help="mnist5k (embedded) or mnist (IDX files in --data-dir) (default: mnist5k)",
    )
    p.add_argument(
        "--data-dir",
        type=Path,
        default=None,
        help="folder of the MNIST IDX files for --dataset mnist (default: none)",
    )
    p.add_argument(
        "--device",
        choices=DEVICES,
        default="auto",
        help="auto picks CUDA when present (default: auto)",
    )
    p.add_argument(
        "--epochs",
        type=positive_int,
        default=None,
        help=f"epoch budget of every trial (default: {DEFAULT_EPOCHS}, or the study's)",
    )
    p.add_argument(
        "--train-pairs",
        type=positive_int,
        default=None,
        help="training pairs (default: 1000, or the study's)",
    )
    p.add_argument(
        "--val-pairs",
        type=positive_int,
        default=None,
        help="validation pairs (default: what the train pool has left, up to 5000)",
    )
    p.add_argument(
        "--workers",
        type=positive_int,
        default=None,
        help=f"worker processes on this machine (default: {DEFAULT_WORKERS}, one per core; "
        "1 on SQLite)",
    )
    p.add_argument(
        "--threads",
        type=positive_int,
        default=None,
        help="torch threads per worker (default: cores / workers)",
    )
    p.add_argument(
        "--create-only",
        action="store_true",
        help="create (or check) the study and exit: the one-shot step before workers start",
    )
    p.add_argument(
        "--no-baselines",
        action="store_true",
        help="do not queue Config's default configuration of each family as a new study's "
        "first trials (queued by default)",
    )
    p.add_argument(
        "--heartbeat",
        type=positive_int,
        default=20,
        help="seconds between heartbeats on RDB storages; a trial silent for three "
        "is failed and retried (default: 20)",
    )
    return p  # fmt: skip


def resolve_storage(
    args: argparse.Namespace, workers: int
) -> tuple[StorageSpec, int, bool, str | None]:
    """The storage, the number of workers it allows, whether it is the default, and a note
    to print once the run starts."""
    storage_flag = args.storage
    if storage_flag is None:
        spec, _ = default_storage(args.study, workers=workers)
        if not spec.shared and workers > 1:
            note = (
                f"{spec.path} is SQLite, which one process only may write: running 1 worker "
                "(use --storage FILE.journal or PostgreSQL for several)"
            )
            return spec, 1, True, note
        return spec, workers, True, None
    spec = parse_storage_flag(storage_flag)
    if not spec.shared and workers > 1 and args.workers is None:
        return spec, 1, False, f"{storage_flag} is SQLite: running 1 worker, not {workers}"
    if not spec.shared and workers > 1:
        raise UsageError(
            f"--storage {storage_flag} is SQLite, which one process only may write; "
            f"use --workers 1, a journal file (studies/NAME.journal) or PostgreSQL for {workers}"
        )
    return spec, workers, False, None


def study_settings(
    args: object, storage: optuna.storages.BaseStorage | None, study: str
) -> tuple[dict[str, object], bool]:
    """Settings fixed for the life of a study: given flags must agree with the stored ones."""
    stored: dict[str, object] = {}
    exists = False
    if storage is not None:
        try:
            stored = optuna.load_study(study_name=study, storage=storage).user_attrs
            exists = True
        except KeyError:
            pass
    settings: dict[str, object] = {}
    for name in STUDY_SETTINGS:
        given = getattr(args, name)
        if exists and name in stored:
            if given is not None and given != stored[name]:
                flag = "--" + name.replace("_", "-")
                raise UsageError(
                    f"study {study!r} was created with {flag} {stored[name]}, not {given}; "
                    f"drop {flag} or start a new study with --study"
                )
            settings[name] = stored[name]
        else:
            settings[name] = given if given is not None else NEW_STUDY_DEFAULTS.get(name)
    return settings, not exists


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workers = args.workers or DEFAULT_WORKERS
    check_workers(PROG, workers)
    if args.dataset == "mnist" and args.data_dir is None:
        fail(PROG, "--dataset mnist needs --data-dir, the folder of the MNIST IDX files")
    try:
        resolve_device(args.device)
        spec, workers, is_default, note = resolve_storage(args, workers)
        threads = args.threads or max(1, CORES // workers)
        # Open what exists already; a new file is created only once the data is known good.
        storage = None
        if spec.path is None or spec.path.exists():
            storage = open_storage(spec, heartbeat=args.heartbeat, pool_size=2)
        settings, new = study_settings(args, storage, args.study)
        source = load_source(str(settings["dataset"]), args.data_dir)
        val_pairs = settings["val_pairs"]
        splits = make_splits(
            source,
            seed=int(settings["seed"]),  # type: ignore[call-overload]
            n_train=int(settings["train_pairs"]),  # type: ignore[call-overload]
            n_val=int(val_pairs) if val_pairs is not None else None,  # type: ignore[call-overload]
        )
        settings["val_pairs"] = len(splits.val)
        if storage is None:
            storage = open_storage(spec, heartbeat=args.heartbeat, pool_size=2)
        if note:
            print(note, file=sys.stderr)
        with owner_lock(spec):
            return run(args, spec, storage, settings, new, workers, threads, splits, is_default)
    except (UsageError, DataError, ValueError) as e:
        fail(PROG, e)


def run(args, spec, storage, settings, new, workers, threads, splits, is_default) -> int:
    epochs, seed = int(settings["epochs"]), int(settings["seed"])
    study = optuna.create_study(
        study_name=args.study,
        storage=storage,
        direction="maximize",
        load_if_exists=True,
        sampler=make_sampler(args.sampler, seed=seed, parallel=workers > 1),
        pruner=make_pruner(args.pruner, epochs=epochs),
    )
    if new:
        for name, value in settings.items():
            study.set_user_attr(name, value)
        study.set_user_attr("data_dir", str(args.data_dir) if args.data_dir else None)
        if not args.no_baselines:
            for params in baselines():
                study.enqueue_trial(params, user_attrs={"baseline": True})
    if spec.path is not None:
        # This run owns the file: a trial still RUNNING was left by a run that was killed.
        for number in fail_running(study, "left RUNNING by an interrupted run"):
            print(
                f"trial {number} was left RUNNING by an interrupted run: "
                "marked failed, its parameters queued again",
                file=sys.stderr,
            )
    finished = count(study, FINISHED)
    start = time.time()
    if args.create_only:
        print(f"study {args.study!r} is ready in {spec.url} ({finished} finished trials)")
        return 0
    if finished >= args.trials:
        print(
            f"study {args.study!r} already has {finished} finished trials "
            f"(--trials {args.trials}): nothing to do"
        )
        print(summary(study, spec, elapsed=0.0, default_storage=is_default))
        return 0
    print(
        f"study {args.study!r}: {finished} of {args.trials} trials finished; "
        f"running {workers} worker(s) x {threads} thread(s), {epochs} epochs per trial"
    )
    deadline = start + args.timeout if args.timeout else None
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    stop = threading.Event()
    install_stop_handlers(stop)
    if workers == 1:
        why = run_inline(args, study, spec, splits, seed, epochs, threads, stop, deadline)
    else:
        base = WorkerSettings(
            storage=spec,
            study=args.study,
            trials=args.trials,
            seed=seed,
            sampler=args.sampler,
            pruner=args.pruner,
            epochs=epochs,
            dataset=str(settings["dataset"]),
            data_dir=args.data_dir,
            train_pairs=int(settings["train_pairs"]),
            val_pairs=int(settings["val_pairs"]),
            device=args.device,
            threads=threads,
            heartbeat=args.heartbeat,
            deadline=deadline,
            parallel=True,
        )
        why = run_workers(study, base, workers, stop)
    elapsed = time.time() - start
    print(
        with_storage_retries(
            lambda: summary(study, spec, elapsed=elapsed, default_storage=is_default),
            "reading the results",
        )
    )
    finished = with_storage_retries(lambda: count(study, FINISHED), "reading the results")
    if why == "stopped":
        print(
            f"interrupted with {finished} of {args.trials} trials finished; "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    if why == "timeout":
        print(f"--timeout reached with {finished} of {args.trials} trials finished")
    elif finished < args.trials:
        print(
            f"workers ended with {finished} of {args.trials} trials finished; "
            "see their errors above and re-run to resume",
            file=sys.stderr,
        )
        return 1
    return 0


def run_inline(args, study, spec, splits, seed, epochs, threads, stop, deadline) -> str:
    objective = Objective(
        splits,
        epochs=epochs,
        seed=seed,
        device=resolve_device(args.device),
        threads=threads,
        stop=stop,
    )
    with tqdm(total=args.trials, initial=count(study, FINISHED), unit="trial") as bar:
        return run_trials(
            study,
            objective,
            target=args.trials,
            lock=SlotLock(spec, args.study),
            deadline=deadline,
            on_trial=lambda frozen: show_progress(bar, study, best=True),
        )


def show_progress(bar: tqdm, study: optuna.Study, *, best: bool = False) -> None:
    """Redraw the bar from the study. While the storage cannot be read (a database restart) the
    bar stays as it is: the trials' own storage calls retry, and say so if they give up."""
    try:
        finished = study.get_trials(deepcopy=False, states=FINISHED)  # one read for both
    except STORAGE_ERRORS:
        return
    bar.n = min(len(finished), bar.total)
    values = [
        t.value
        for t in finished
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    if best and values:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        bar.set_postfix(best=f"{pick(values):.4f}")
    bar.refresh()


def run_workers(study: optuna.Study, base: WorkerSettings, workers: int, stop) -> str:
    ctx = multiprocessing.get_context("spawn")
    procs = [
        ctx.Process(target=worker_main, args=(replace(base, index=i),)) for i in range(workers)
    ]
    for p in procs:
        p.start()

    def forward(signum: int, frame: object) -> None:
        # A terminal's Ctrl-C reaches every worker; a signal sent to this process alone
        # (kill, a supervisor) must reach them too.
        stop.set()
        for p in procs:
            if p.is_alive() and p.pid is not None:
                os.kill(p.pid, signal.SIGTERM)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)
    reported: set[int] = set()
    with tqdm(total=base.trials, initial=count(study, FINISHED), unit="trial") as bar:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            show_progress(bar, study)
            for p in procs:
                if p.exitcode not in (None, 0) and p.pid not in reported and p.pid is not None:
                    reported.add(p.pid)
                    worker = worker_id(p.pid)
                    lost = with_storage_retries(
                        partial(fail_running, study, f"worker {worker} died", worker=worker),
                        f"failing the trials of worker {worker}",
                    )
                    if lost:
                        print(
                            f"worker {p.pid} died (exit {p.exitcode}); trial(s) {lost} "
                            "marked failed and queued again",
                            file=sys.stderr,
                        )
                    if not stop.is_set() and p.exitcode != 1:
                        # a killed worker is replaced so the total is still reached
                        new = ctx.Process(
                            target=worker_main, args=(replace(base, index=len(procs)),)
                        )
                        new.start()
                        procs.append(new)
        show_progress(bar, study)
    if stop.is_set():
        return "stopped"
    if base.deadline is not None and time.time() >= base.deadline:
        return "timeout"
    return "done"


if __name__ == "__main__":
    sys.exit(main())
