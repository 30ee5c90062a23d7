"""One worker: take trials from the study until the shared total is reached.

The same loop runs inline (one process) and in every worker process, local or in a container.
"""

from __future__ import annotations

import contextlib
import ctypes
import multiprocessing
import os
import secrets
import signal
import socket
import sys
import threading
import time
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial

import numpy as np
import optuna
from optuna.storages._heartbeat import BaseHeartbeat, is_heartbeat_enabled
from optuna.trial import FrozenTrial, TrialState

from data import DataError
from models import DeviceError, resolve_device
from search.errors import StorageDamaged, StorageLost, UsageError, full_disk
from search.interrupt import let_stops_through
from search.locks import SlotLock
from search.objective import Objective, SearchData, WorkerStopped
from search.racing import Plan
from search.retries import STORAGE_ERRORS, with_storage_retries
from search.settings import StudySettings
from search.storage import StorageSpec, error_detail, open_storage
from search.strategies import make_pruner, make_sampler
from search.trials import fail_and_retry, retry

PR_SET_PDEATHSIG = 1  # prctl(2)
MAX_CONSECUTIVE_ERRORS = 5  # trials failing on errors in a row: the setup is broken, not a config
WAIT = "wait"
UNCLAIMED = "taken by a worker that lost the study storage before it could claim it"


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to take trials of a study; the same for every worker of a run."""

    storage: StorageSpec
    study: str
    trials: int  # the study's shared total of finished trials
    settings: StudySettings
    sampler: str
    pruner: str
    device: str
    threads: int
    heartbeat: int
    deadline: float | None  # time.time() after which no new trial starts
    index: int = 0  # this worker's number, for its sampler seed
    parallel: bool = False

    @property
    def plan(self) -> Plan:
        s = self.settings
        return Plan.of(s, trials=self.trials)


def worker_id(pid: int | None = None) -> str:
    """How a trial names the process that runs it: host:pid (this process by default)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM end the current trial at its next epoch and take no new one."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    let_stops_through()  # a stop sent while this process started arrives now


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
            # The first beat was recorded when the trial was claimed (take_trial).
            while not self.done.wait(interval):
                with contextlib.suppress(Exception):  # the next beat tries again
                    storage.record_heartbeat(self.trial_id)

        self.thread = threading.Thread(target=beat, daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()


def run_trials(
    study: optuna.Study,
    objective: Objective,
    *,
    plan: Plan,
    lock: SlotLock,
    deadline: float | None,
    on_trial: Callable[[FrozenTrial], None] | None = None,
) -> str:
    """Run trials until the plan is done; returns why it stopped: "done", "timeout" or
    "stopped"."""
    errors = 0
    while True:
        if objective.stop.is_set():
            return "stopped"
        if deadline is not None and time.time() >= deadline:
            return "timeout"
        trial = with_storage_retries(lambda: take_trial(study, lock, plan), "taking a trial")
        if trial is None:
            return "done"
        if trial == WAIT:
            time.sleep(1.0)
            continue
        assert isinstance(trial, optuna.Trial)
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
                if isinstance(e, OSError) and full_disk(e):
                    raise  # nothing more can be written: the command ends in one line
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
            if again:  # not the configuration's fault: queued again however often it happens
                with_storage_retries(
                    partial(retry, study, frozen, max_retry=None),
                    f"queueing trial {trial.number}",
                )
            if on_trial is not None:
                on_trial(frozen)


def take_trial(study: optuna.Study, lock: SlotLock, plan: Plan) -> optuna.Trial | str | None:
    """Fail stale trials, then, under the slot lock, ask for a trial if the plan has one left
    and claim it for this worker.

    None: the plan is done. WAIT: running trials would finish it, but one of them may belong
    to a dead worker (once the heartbeat fails it, its retry is taken here), or the race was
    just queued.
    """
    if is_heartbeat_enabled(study._storage):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
    with lock, warnings.catch_warnings():
        # Optuna warns that heartbeats belong to Study.optimize; this loop beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trials = study.get_trials(deepcopy=False)
        if fail_unclaimed(study, trials):
            trials = study.get_trials(deepcopy=False)
        while (step := plan.next_step(study, trials)) == "skip":
            left = study.ask()  # a search trial queued beyond the total: closed, never run
            left.set_user_attr("fail_reason", "not run: the search had its total")
            study.tell(left, state=TrialState.FAIL)
            trials = study.get_trials(deepcopy=False)
        if step == "done":
            return None
        if step == "wait":
            return WAIT
        trial = study.ask()
        if is_heartbeat_enabled(study._storage):  # before the claim: a claimed trial can go stale
            assert isinstance(study._storage, BaseHeartbeat)
            study._storage.record_heartbeat(trial._trial_id)
        trial.set_user_attr("worker", worker_id())
        return trial


def fail_unclaimed(study: optuna.Study, trials: list[FrozenTrial]) -> bool:
    """Fail and queue again the RUNNING trials that no worker claimed. A worker claims its
    trial under the slot lock, so a trial seen unclaimed there was taken by a worker that lost
    the database (or died) before it could claim it: it never beats, so it would never go
    stale, and the study would wait for it forever. (A claimed trial has beaten once, so it
    goes stale if its worker loses it; worker names are not unique enough to tell more: every
    container on the host network is host:1.) Called under the slot lock, with the study's
    trials; returns whether it failed any."""
    failed = False
    for t in trials:
        if t.state != TrialState.RUNNING or "worker" in t.user_attrs:
            continue
        if fail_and_retry(study, t._trial_id, UNCLAIMED) is not None:
            failed = True
            print(
                f"trial {t.number} was taken by a worker that lost the study storage before "
                "it could claim it: marked failed, its parameters queued again",
                file=sys.stderr,
            )
    return failed


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


def sampler_seed(study_seed: int, index: int, seen: int, *, shared: bool = False) -> int:
    """Worker `index`'s sampler seed, for a study that had `seen` ended trials when it started.
    A new study's workers of one search.run are seeded study seed + index, so one worker with
    one seed reproduces its search; a resumed or added worker draws a stream of its own instead
    of replaying the first run's draws. Workers that share a PostgreSQL study from separate
    commands (`shared`: every one is index 0) also mix in fresh entropy, or workers started
    together would propose the same configurations (their process ids are no help: a worker
    container's is 1)."""
    if seen == 0 and not shared:
        return (study_seed + index) % 2**32
    entropy = [study_seed, index, seen] + ([secrets.randbits(64)] if shared else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def open_worker(
    spec: WorkerSpec,
    stop: threading.Event,
    *,
    data: SearchData | None = None,
    storage: optuna.storages.BaseStorage | None = None,
) -> tuple[optuna.Study, Objective]:
    """The study with this worker's sampler and pruner, and the objective on the study's data;
    a caller that has the data or the storage open already passes them."""
    settings = spec.settings
    if storage is None:
        storage = open_storage(spec.storage, create=False, heartbeat=spec.heartbeat)
    shared = spec.storage.kind == "postgresql"  # other commands may work on it at the same time
    seen = optuna.load_study(study_name=spec.study, storage=storage).get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    study = optuna.load_study(
        study_name=spec.study,
        storage=storage,
        sampler=make_sampler(
            spec.sampler,
            seed=sampler_seed(settings.seed, spec.index, len(seen), shared=shared),
            parallel=spec.parallel or shared,
        ),
        pruner=make_pruner(spec.pruner, epochs=settings.trial_budget),
    )
    objective = Objective(
        data if data is not None else SearchData.load(settings),
        device=resolve_device(spec.device),
        threads=spec.threads,
        stop=stop,
    )
    return study, objective


def die_with_parent() -> None:
    """Linux: a worker process is killed the moment its parent dies, even by kill -9, so no
    worker of a dead run goes on writing to a study that a new run may already own. (A signal
    to the parent reaches its workers as a clean stop; see search.supervisor.)"""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGKILL)


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process; exits 0 when the total is reached or it was stopped."""
    die_with_parent()
    stop = threading.Event()
    install_stop_handlers(stop)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        study, objective = open_worker(spec, stop)
        lock = SlotLock(spec.storage, spec.study)
        run_trials(study, objective, plan=spec.plan, lock=lock, deadline=spec.deadline)
    except (UsageError, DataError, DeviceError, StorageLost, StorageDamaged, OSError) as e:
        message = full_disk(e) if isinstance(e, OSError) else str(e)
        if not message:
            raise
        print(f"worker {worker_id()}: {message}", file=sys.stderr)
        sys.exit(1)  # not replaced: a new worker would find the same fault (a full disk too)
