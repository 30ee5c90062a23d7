"""A search run: open or create the study, run its workers until the shared total is reached,
and say how it went. One worker runs in this process; several run under the supervisor."""

from __future__ import annotations

import sys
import threading
import time
import warnings
from contextlib import nullcontext
from dataclasses import fields, replace

import optuna
from optuna.trial import TrialState

from models import DEFAULT_PRECISION, resolve_device, resolve_precision
from search.errors import UsageError
from search.execution.handle import StudyHandle
from search.execution.loop import Ending, run_trials
from search.execution.progress import progress_bar, show_progress
from search.execution.request import RunRequest
from search.execution.summary import run_summary
from search.execution.supervisor import supervise
from search.execution.trials import fail_running
from search.execution.worker import WorkerSpec, open_worker
from search.stopping import held, stop_at_next_epoch
from search.storage import SlotLock, open_storage, owner_lock, with_storage_retries
from search.study import (
    RACE_AFTER,
    Plan,
    SearchData,
    StudySettings,
    Tradeoff,
    best_search_trial,
    check_direction,
    foreign_parameter,
    queued_defaults,
    recorded_params,
    settle,
)

METRIC = "validation accuracy"
# Written last when a run sets a new study up: a study without it was left half set up (a run
# killed between its writes) and is made again, unless a trial of it ever started (a study
# made before this mark existed).
SET_UP = "set_up"

QUEUED_DEFAULT = "queued_default"  # the user attribute of a trial queued first


def half_made(study: optuna.Study) -> bool:
    """Settings written in part, no mark of a whole set-up, and no trial ever started. (A study
    with every setting stored is taken as made, and its settings checked, mark or not.)"""
    attrs = study.user_attrs
    started = [t for t in study.get_trials(deepcopy=False) if t.state != TrialState.WAITING]
    every_setting = all(f.name in attrs for f in fields(StudySettings))
    return SET_UP not in attrs and not started and not every_setting


def existing(storage: optuna.storages.BaseStorage | None, study: str) -> optuna.Study | None:
    """Study `study` where the storage has it."""
    if storage is None:
        return None
    try:
        return optuna.load_study(study_name=study, storage=storage)
    except KeyError:
        return None


def stored_settings(found: optuna.Study | None, study: str) -> StudySettings | None:
    """The settings of an existing study (`found`); None when there is no such study yet (or
    one that a run created and did not get to set up in full: `half_made`). A study of another
    shape (another program's, several objectives, minimized, no settings but trials) is
    refused."""
    if found is None:
        return None
    attrs = found.user_attrs
    check_direction(found)
    if half_made(found):
        return None
    if "epochs" not in attrs and "dataset" not in attrs:
        if found.get_trials(deepcopy=False):
            raise UsageError(
                f"study {study!r} was not made by search.run (it has trials but no settings); "
                "choose another --study"
            )
        return None
    settings = StudySettings.from_user_attrs(attrs, study=study)
    mismatch = foreign_parameter(found.get_trials(deepcopy=False))
    if mismatch:
        raise UsageError(
            f"study {study!r} does not fit this search space ({mismatch}); choose another --study"
        )
    return settings


def remake(storage: optuna.storages.BaseStorage, name: str) -> bool:
    """Delete study `name` where it exists half set up, so that it is made afresh; whether it
    did. Called under the run's locks, so no other run is setting it up now."""
    try:
        found = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return False
    if not found.user_attrs and not found.get_trials(deepcopy=False):
        return False  # created, nothing written yet: set it up in place
    optuna.delete_study(study_name=name, storage=storage)
    return True


def prepare(
    request: RunRequest, found: optuna.Study | None
) -> tuple[StudySettings | None, SearchData]:
    """The stored settings of study `found` (None for a new study) and the study's data,
    checked."""
    stored = stored_settings(found, request.study)
    given = dict(request.given)
    if stored is None:  # a new study records its precision resolved on this machine
        asked = given.get("precision") or DEFAULT_PRECISION
        given["precision"] = resolve_precision(asked, resolve_device(request.device))
    settings = settle(given, stored, study=request.study)
    data = SearchData.load(settings)
    settings = replace(settings, val_pairs=len(data.splits().val))
    return stored, SearchData(data.source, settings)


def run(request: RunRequest) -> int:
    """Check everything a run needs, create nothing before the data is known good, then create
    (once, under a lock, whoever else starts at the same moment) and run."""
    resolve_device(request.device)
    spec = request.storage.spec

    def open_it() -> optuna.storages.BaseStorage:
        return open_storage(spec, heartbeat=request.heartbeat, pool_size=2)

    storage = open_it() if spec.path is None or spec.path.exists() else None
    # One Study object from here on: each new one reads every trial again.
    found = existing(storage, request.study)
    stored, data = prepare(request, found)  # the data is checked before anything is created
    if storage is None:
        storage = open_it()
    if request.storage.note:
        print(request.storage.note, file=sys.stderr)
    with owner_lock(spec):
        # File storages are this run's alone from here; a PostgreSQL study is created under the
        # slot lock, so two first runs do not both set it up (the second finds it made). A stop
        # waits until the study is set up in full.
        slot_lock = SlotLock(spec, request.study) if spec.kind == "postgresql" else nullcontext()
        with held(), slot_lock:
            if stored is None:  # a study set up meanwhile by another run is found here
                found = existing(storage, request.study)
                if stored_settings(found, request.study) is not None:
                    stored, data = prepare(request, found)
            if stored is None and remake(storage, request.study):
                print(
                    f"study {request.study!r} was left half set up by a run that was stopped: "
                    "made again",
                    file=sys.stderr,
                )
            # A study with its settings is never made again (`half_made`): `found` is it.
            study = (
                found
                if stored is not None and found is not None
                else optuna.create_study(
                    study_name=request.study,
                    storage=storage,
                    direction="maximize",
                    load_if_exists=True,
                )
            )
            if stored is None:
                with warnings.catch_warnings():  # metric names are "experimental" in Optuna
                    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
                    study.set_metric_names([METRIC])  # what the dashboard and CLI call the value
                for name, value in data.settings.to_user_attrs().items():
                    study.set_user_attr(name, value)
                if request.queue_defaults and not data.settings.cold_start:
                    for config in queued_defaults(data.settings.max_params):
                        study.enqueue_trial(
                            recorded_params(config), user_attrs={QUEUED_DEFAULT: True}
                        )
                study.set_user_attr(SET_UP, True)
        return run_study(request, study, storage=storage, data=data)


def run_study(
    request: RunRequest,
    study: optuna.Study,
    *,
    storage: optuna.storages.BaseStorage,
    data: SearchData,
) -> int:
    spec, workers = request.storage.spec, request.storage.workers
    stop = threading.Event()
    stop_at_next_epoch(stop)  # from here a stop ends the run at the next epoch
    handle = StudyHandle.of(study, storage)
    if spec.path is not None:
        # This run owns the file: a trial still RUNNING was left by a run that was killed.
        for number in fail_running(handle, "left RUNNING by an interrupted run"):
            print(
                f"trial {number} was left RUNNING by an interrupted run: "
                "marked failed, its parameters queued again",
                file=sys.stderr,
            )
    settings = data.settings
    trials = study.get_trials(deepcopy=False)
    # A smaller --trials than a race already run after is that race's study: nothing to add.
    raced = max((t.user_attrs[RACE_AFTER] for t in trials if RACE_AFTER in t.user_attrs), default=0)
    plan = Plan.of(settings, trials=max(request.trials, raced))
    finished, total = plan.progress(trials)
    if request.create_only:
        print(f"study {request.study!r} is ready in {spec.shown} ({finished} finished trials)")
        return 0
    if plan.done(trials):
        print(
            f"study {request.study!r} already has {finished} finished trials "
            f"(--trials {plan.trials}{race_words(plan)}): nothing to do"
        )
        print(run_summary(study, spec, elapsed=0.0, default_storage=request.storage.default))
        return 0
    # what every worker samples and prunes with
    strategy = request.strategy.settled(cold_start=settings.cold_start)
    request = replace(request, strategy=strategy)
    share = strategy.random_share or 0.0
    part = " (the structure)" if strategy.random_draws == "structure" else ""
    if strategy.spare_random_draws:
        part += ", never pruned"
    at_random = f"; {share:.0%} of the search drawn at random{part}" if share else ""
    print(
        f"study {request.study!r}: {finished} of {total} trials finished "
        f"({plan.trials} search{race_words(plan)}); running {workers} worker(s) x "
        f"{request.threads} thread(s), {trial_words(settings)} per trial{at_random}"
    )
    start = time.time()
    worker = WorkerSpec(
        request=request,
        settings=settings,
        plan=plan,
        deadline=start + request.timeout if request.timeout else None,
        parallel=workers > 1,
    )
    if workers == 1:
        mine, objective = open_worker(worker, stop, data=data, storage=storage, study=study)
        study = mine.study  # with this worker's sampler and pruner
        with progress_bar(study, plan) as bar:
            why = run_trials(
                mine,
                objective,
                plan=plan,
                lock=SlotLock(spec, request.study),
                deadline=worker.deadline,
                on_trial=lambda frozen: show_progress(bar, study, plan, best=True),
            )
    else:
        why = supervise(handle, worker, workers=workers, stop=stop)
    return report(request, study, plan, why=why, elapsed=time.time() - start)


def race_words(plan: Plan) -> str:
    if plan.finalists == 0:
        return ""
    default = " and the default" if plan.default_params is not None else ""
    return f", then a race of the {plan.finalists} best{default} on {plan.seeds} seeds"


def report(
    request: RunRequest, study: optuna.Study, plan: Plan, *, why: Ending, elapsed: float
) -> int:
    """The closing summary and the exit status: 0 done, 130 stopped, 1 short of the total."""
    spec, default = request.storage.spec, request.storage.default
    text = with_storage_retries(
        lambda: run_summary(study, spec, elapsed=elapsed, default_storage=default),
        "reading the results",
    )
    print(text)
    trials = with_storage_retries(lambda: study.get_trials(deepcopy=False), "reading the results")
    finished, total = plan.progress(trials)
    if why is Ending.STOPPED:
        print(
            f"interrupted with {finished} of {total} trials finished; "
            "re-run the same command to resume",
            file=sys.stderr,
        )
        return 130
    if why is Ending.TIMEOUT:
        print(f"--timeout reached with {finished} of {total} trials finished")
    elif not plan.done(trials):
        print(
            f"workers ended with {finished} of {total} trials finished; "
            "see their errors above and re-run to resume",
            file=sys.stderr,
        )
        return 1
    if best_search_trial(trials) is None:
        settings = StudySettings.from_user_attrs(study.user_attrs, study=request.study)
        over = len(Tradeoff.of(trials, settings.max_params).over_budget)
        ended = [t for t in trials if t.state.is_finished()]
        if settings.max_params is not None and over:
            why = (
                f"{over} of them over the budget of {settings.max_params:,} parameters: raise "
                "--max-params (in a new --study)"
            )
        elif not ended:
            why = "none was started before --timeout: give it more time, or leave it out"
        else:
            why = "every one was pruned or failed: see the summary, or run more --trials"
        print(
            f"no search trial completed, so there is nothing to select or race ({why})",
            file=sys.stderr,
        )
        return 1
    return 0


def trial_words(settings: StudySettings) -> str:
    """What a trial trains: "20 epochs", or "2 nets x 12 epochs"."""
    epochs = f"{settings.trial_budget} epochs"
    return epochs if settings.trial_nets == 1 else f"{settings.trial_nets} nets x {epochs}"
