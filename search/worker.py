"""One worker: take trials from the study until the shared total is reached.

The same loop runs inline (one process) and in every worker process, local or in a container.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import TypeVar

import optuna
import sqlalchemy
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from data import DataError, load_source, make_splits
from models import resolve_device
from search.errors import UsageError
from search.objective import Objective, WorkerStopped
from search.storage import SlotLock, StorageSpec, error_detail, open_storage
from search.strategies import make_pruner, make_sampler
from search.trials import FINISHED, TAKEN, retry

T = TypeVar("T")
MAX_CONSECUTIVE_ERRORS = 5  # trials failing on errors in a row: the setup is broken, not a config
STORAGE_RETRIES = 12
WAIT = "wait"  # with 5 s between tries: a minute to ride out a database restart
# What a storage raises while its database is down or restarting.
STORAGE_ERRORS = (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)


@dataclass(frozen=True)
class WorkerSettings:
    storage: StorageSpec
    study: str
    trials: int
    seed: int
    sampler: str
    pruner: str
    epochs: int
    dataset: str
    data_dir: Path | None
    train_pairs: int
    val_pairs: int | None
    device: str
    threads: int
    heartbeat: int
    deadline: float | None  # time.time() after which no new trial starts
    index: int = 0  # this worker's number, for its sampler seed
    parallel: bool = False


def worker_id(pid: int | None = None) -> str:
    """How a trial names the process that runs it: host:pid (this process by default)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM end the current trial at its next epoch and take no new one."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)


class Heartbeat:
    """Beats for one trial from a thread; unlike Optuna's, it survives a dropped connection
    (a live worker must not be taken for dead because the database restarted)."""

    def __init__(self, storage: optuna.storages.BaseStorage, trial_id: int) -> None:
        self.storage, self.trial_id = storage, trial_id
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> None:
        if not is_heartbeat_enabled(self.storage):
            return
        assert isinstance(self.storage, BaseHeartbeat)
        interval = self.storage.get_heartbeat_interval() or 60
        storage: BaseHeartbeat = self.storage

        def beat() -> None:
            while True:
                with contextlib.suppress(Exception):  # the next beat tries again
                    storage.record_heartbeat(self.trial_id)
                if self.done.wait(interval):
                    return

        self.thread = threading.Thread(target=beat, daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()


def with_storage_retries(action: Callable[[], T], what: str) -> T:
    for attempt in range(STORAGE_RETRIES):
        try:
            return action()
        except STORAGE_ERRORS as e:
            if attempt == STORAGE_RETRIES - 1:
                raise UsageError(
                    f"lost the study storage while {what} ({error_detail(e.__cause__ or e)}); "
                    "re-run the same command to resume"
                ) from None
            print(f"storage unreachable while {what}; retrying in 5 s", file=sys.stderr)
            time.sleep(5)
    raise AssertionError("unreachable")


def run_trials(
    study: optuna.Study,
    objective: Objective,
    *,
    target: int,
    lock: SlotLock,
    deadline: float | None,
    on_trial: Callable[[FrozenTrial], None] | None = None,
) -> str:
    """Run trials until the study has `target` taken; returns why it stopped:
    "done", "timeout" or "stopped"."""
    me = worker_id()
    errors = 0
    while True:
        if objective.stop.is_set():
            return "stopped"
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        trial = with_storage_retries(lambda: take_trial(study, lock, target), "taking a trial")
        if trial is None:
            return "done"
        if trial == WAIT:
            time.sleep(1.0)
            continue
        assert isinstance(trial, optuna.Trial)
        with_storage_retries(
            partial(trial.set_user_attr, "worker", me), f"starting trial {trial.number}"
        )
        # `again`: the trial was interrupted, not wrong; its configuration is run again later.
        value, state, reason, again = None, TrialState.COMPLETE, None, False
        with Heartbeat(study._storage, trial._trial_id):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except WorkerStopped as e:
                state, reason, again = TrialState.FAIL, str(e), True
            except STORAGE_ERRORS as e:  # the database went away mid-trial (a restart)
                state, again = TrialState.FAIL, True
                reason = f"lost the study storage: {error_detail(e.__cause__ or e)}"
                print(f"trial {trial.number} {reason}; it will be run again", file=sys.stderr)
            except Exception as e:  # one bad trial must not end the study
                state, reason = TrialState.FAIL, f"{type(e).__name__}: {e}"
                print(f"trial {trial.number} failed: {reason}", file=sys.stderr)
        frozen = with_storage_retries(
            partial(finish_trial, study, trial, value, state, reason),
            f"saving trial {trial.number}",
        )
        errors = errors + 1 if state == TrialState.FAIL and not again else 0
        if errors >= MAX_CONSECUTIVE_ERRORS and not objective.stop.is_set():
            raise UsageError(f"{errors} trials in a row failed, the last with {reason}; stopping")
        if isinstance(frozen, FrozenTrial):
            if again:
                with_storage_retries(
                    partial(retry, study, frozen), f"queueing trial {trial.number}"
                )
            if on_trial is not None:
                on_trial(frozen)


def take_trial(study: optuna.Study, lock: SlotLock, target: int) -> optuna.Trial | str | None:
    """Fail stale trials, then, under the slot lock, ask for a trial if the total allows.

    None: the total is reached. WAIT: the running trials would reach it, but one of them may
    belong to a dead worker; once the heartbeat fails it, its retry is taken here.
    """
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    with lock, warnings.catch_warnings():
        # Optuna warns that heartbeats belong to Study.optimize; this loop beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        states = [t.state for t in study.get_trials(deepcopy=False, states=TAKEN)]
        if sum(state in FINISHED for state in states) >= target:
            return None
        if len(states) >= target:
            return WAIT
        return study.ask()


def finish_trial(
    study: optuna.Study,
    trial: optuna.Trial,
    value: float | None,
    state: TrialState,
    reason: str | None,
) -> FrozenTrial | None:
    try:
        if reason is not None:
            trial.set_user_attr("fail_reason", reason)
        return study.tell(trial, value, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        # Optuna's tell raises ValueError for a trial no longer RUNNING.
        if study._storage.get_trial(trial._trial_id).state.is_finished():
            return None  # taken for dead meanwhile, failed and retried by another worker
        raise


def prepare(settings: WorkerSettings, stop: threading.Event) -> tuple[optuna.Study, Objective]:
    """Load the data once and open the study, as one worker."""
    source = load_source(settings.dataset, settings.data_dir)
    splits = make_splits(
        source, seed=settings.seed, n_train=settings.train_pairs, n_val=settings.val_pairs
    )
    storage = open_storage(settings.storage, create=False, heartbeat=settings.heartbeat)
    study = optuna.load_study(
        study_name=settings.study,
        storage=storage,
        sampler=make_sampler(
            settings.sampler, seed=settings.seed + settings.index, parallel=settings.parallel
        ),
        pruner=make_pruner(settings.pruner, epochs=settings.epochs),
    )
    objective = Objective(
        splits,
        epochs=settings.epochs,
        seed=settings.seed,
        device=resolve_device(settings.device),
        threads=settings.threads,
        stop=stop,
    )
    return study, objective


def worker_main(settings: WorkerSettings) -> None:
    """Entry point of a worker process; exits 0 when the total is reached or it was stopped."""
    stop = threading.Event()
    install_stop_handlers(stop)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study, objective = prepare(settings, stop)
        lock = SlotLock(settings.storage, settings.study)
        run_trials(study, objective, target=settings.trials, lock=lock, deadline=settings.deadline)
    except (UsageError, DataError, ValueError) as e:
        print(f"worker {worker_id()}: {e}", file=sys.stderr)
        sys.exit(1)
