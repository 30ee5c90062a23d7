"""One worker of a run: its spec, its sampler seed, the study and objective it opens, and the
entry point of a worker process."""

from __future__ import annotations

import secrets
import sys
import threading
from dataclasses import dataclass

import numpy as np
import optuna
from optuna.trial import TrialState

from models import resolve_device
from search.errors import FAULTS, USER_ERRORS, full_disk
from search.execution.handle import StudyHandle
from search.execution.loop import run_trials
from search.execution.request import RunRequest
from search.execution.trials import worker_id
from search.stopping import die_with_parent, stop_at_next_epoch
from search.storage import SlotLock, open_storage, with_storage_retries
from search.study import (
    Objective,
    Plan,
    SearchData,
    StudySettings,
)


@dataclass(frozen=True)
class WorkerSpec:
    """What a worker needs to take trials of a study: the run's request, the study's settings
    and the run's plan (built once by the command, so every worker of a run, in its process or
    in another, works towards the same total and race), and this worker's own number."""

    request: RunRequest
    settings: StudySettings
    plan: Plan
    deadline: float | None  # time.time() after which no new trial starts
    index: int = 0  # this worker's number, for its sampler seed
    parallel: bool = False


def sampler_seed(study_seed: int, index: int, seen: int, *, many_commands: bool = False) -> int:
    """Worker `index`'s sampler seed, for a study that had `seen` ended trials when it started.
    A new study's workers of one search.run are seeded study seed + index, so one worker with
    one seed reproduces its search; a resumed or added worker draws a stream of its own instead
    of replaying the first run's draws. Workers that share a PostgreSQL study from separate
    commands (`many_commands`: every one is index 0) also mix in fresh entropy, or workers
    started together would propose the same configurations (their process ids are no help: a
    worker container's is 1)."""
    if seen == 0 and not many_commands:
        return (study_seed + index) % 2**32
    entropy = [study_seed, index, seen] + ([secrets.randbits(64)] if many_commands else [])
    return int(np.random.SeedSequence(entropy).generate_state(1)[0])


def open_worker(
    spec: WorkerSpec,
    stop: threading.Event,
    *,
    data: SearchData | None = None,
    storage: optuna.storages.BaseStorage | None = None,
    study: optuna.Study | None = None,
) -> tuple[StudyHandle, Objective]:
    """The study with this worker's sampler and pruner, and the objective on the study's data;
    a caller that has the data, the storage or the study (on that storage) open already passes
    them. The study is loaded once: a `Study` keeps the trials it has read, and each new one
    reads every trial again (seconds on a study of thousands of trials on PostgreSQL)."""
    settings, request = spec.settings, spec.request
    where = request.storage.spec
    if storage is None:
        storage = open_storage(where, create=False, heartbeat=request.heartbeat)
    if study is None:
        study = optuna.load_study(study_name=request.study, storage=storage)
    many = where.kind == "postgresql"  # workers of other commands may share it meanwhile
    seen = study.get_trials(
        deepcopy=False, states=(TrialState.COMPLETE, TrialState.PRUNED, TrialState.FAIL)
    )
    study.sampler = request.strategy.make_sampler(
        seed=sampler_seed(settings.seed, spec.index, len(seen), many_commands=many),
        parallel=spec.parallel or many,
        trials=spec.plan.trials,
    )
    study.pruner = request.strategy.make_pruner(epochs=settings.trial_budget)
    objective = Objective(
        data if data is not None else SearchData.load(settings),
        device=resolve_device(request.device),
        threads=request.threads,
        stop=stop,
    )
    return StudyHandle.of(study, storage), objective


def worker_main(spec: WorkerSpec) -> None:
    """Entry point of a worker process; exits 0 when the total is reached or it was stopped."""
    die_with_parent()
    stop = threading.Event()
    stop_at_next_epoch(stop)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        handle, objective = with_storage_retries(
            lambda: open_worker(spec, stop), "opening the study"
        )
        lock = SlotLock(spec.request.storage.spec, spec.request.study)
        run_trials(handle, objective, plan=spec.plan, lock=lock, deadline=spec.deadline)
    except (*USER_ERRORS, *FAULTS, OSError) as e:
        message = full_disk(e) if isinstance(e, OSError) else str(e)
        if not message:
            raise
        print(f"worker {worker_id()}: {message}", file=sys.stderr)
        sys.exit(1)  # not replaced: a new worker would find the same fault (a full disk too)
