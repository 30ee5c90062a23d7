"""The trial loop of one worker: take a trial under the slot lock, train it, tell the study,
until the plan is done. The same loop runs inline (one process) and in every worker process,
local or in a container."""

from __future__ import annotations

import sys
import time
import warnings
from collections.abc import Callable
from enum import Enum
from functools import partial

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.errors import UsageError, full_disk
from search.execution.handle import StudyHandle
from search.execution.heartbeat import Heartbeat, fail_stale_trials
from search.execution.trials import fail_and_retry, retry, worker_id
from search.storage import STORAGE_ERRORS, SlotLock, error_detail, with_storage_retries
from search.study import Objective, Plan, Step, WorkerStopped

MAX_CONSECUTIVE_ERRORS = 5  # trials failing on errors in a row: the setup is broken, not a config
UNCLAIMED = "taken by a worker that lost the study storage before it could claim it"


class Ending(Enum):
    """Why a worker's loop (or a run's workers) ended."""

    DONE = "done"  # the plan is done
    TIMEOUT = "timeout"  # --timeout passed: no new trial was started
    STOPPED = "stopped"  # Ctrl-C or SIGTERM


def run_trials(
    handle: StudyHandle,
    objective: Objective,
    *,
    plan: Plan,
    lock: SlotLock,
    deadline: float | None,
    on_trial: Callable[[FrozenTrial], None] | None = None,
) -> Ending:
    """Run trials until the plan is done, the deadline passes or a stop arrives."""
    errors = 0
    while True:
        if objective.stop.is_set():
            return Ending.STOPPED
        if deadline is not None and time.time() >= deadline:
            return Ending.TIMEOUT
        trial = with_storage_retries(lambda: take_trial(handle, lock, plan), "taking a trial")
        if trial is Step.DONE:
            return Ending.DONE
        if trial is Step.WAIT:
            time.sleep(1.0)
            continue
        assert isinstance(trial, optuna.Trial)
        # `again`: the trial was interrupted, not wrong; its configuration is run again later.
        value, state, reason, again = None, TrialState.COMPLETE, None, False
        with Heartbeat(handle, trial.number):
            try:
                value = objective(trial)
            except optuna.TrialPruned:
                state = TrialState.PRUNED
            except WorkerStopped as e:
                state, reason, again = TrialState.FAIL, str(e), True
            except STORAGE_ERRORS as e:  # the database went away mid-trial (a restart)
                state, again = TrialState.FAIL, True
                reason = f"lost the study storage: {error_detail(e.__cause__ or e)}"
                if "disk is full" not in reason:  # that one ends the command, in one line
                    print(f"trial {trial.number} {reason}; it will be run again", file=sys.stderr)
            except Exception as e:  # one bad trial must not end the study
                if isinstance(e, OSError) and full_disk(e):
                    raise  # nothing more can be written: the command ends in one line
                state, reason = TrialState.FAIL, f"{type(e).__name__}: {e}"
                print(f"trial {trial.number} failed: {reason}", file=sys.stderr)
        frozen = with_storage_retries(
            partial(finish_trial, handle, trial, value, state, reason),
            f"saving trial {trial.number}",
        )
        errors = errors + 1 if state == TrialState.FAIL and not again else 0
        if errors >= MAX_CONSECUTIVE_ERRORS and not objective.stop.is_set():
            raise UsageError(f"{errors} trials in a row failed, the last with {reason}; stopping")
        if isinstance(frozen, FrozenTrial):
            if again:  # not the configuration's fault: queued again however often it happens
                with_storage_retries(
                    partial(retry, handle.study, frozen, max_retry=None),
                    f"queueing trial {trial.number}",
                )
            if on_trial is not None:
                on_trial(frozen)


def take_trial(handle: StudyHandle, lock: SlotLock, plan: Plan) -> optuna.Trial | Step:
    """Fail stale trials, then, under the slot lock, ask for a trial if the plan has one left
    and claim it for this worker.

    Step.DONE: the plan is done. Step.WAIT: running trials would finish it, but one of them
    may belong to a dead worker (once the heartbeat fails it, its retry is taken here), or the
    race was just queued.
    """
    study = handle.study
    fail_stale_trials(handle)
    with lock, warnings.catch_warnings():
        # Optuna warns that heartbeats belong to Study.optimize; this loop beats itself.
        warnings.filterwarnings("ignore", message="Heartbeat of storage")
        trials = study.get_trials(deepcopy=False)
        if fail_unclaimed(handle, trials):
            trials = study.get_trials(deepcopy=False)
        while (step := plan.next_step(study, trials)) is Step.SKIP:
            left = study.ask()  # a search trial queued beyond the total: closed, never run
            left.set_user_attr("fail_reason", "not run: the search had its total")
            study.tell(left, state=TrialState.FAIL)
            trials = study.get_trials(deepcopy=False)
        if step is not Step.ASK:
            return step
        trial = study.ask()
        if handle.heartbeat is not None:  # before the claim: a claimed trial can go stale
            handle.record_heartbeat(handle.trial_id(trial.number))
        trial.set_user_attr("worker", worker_id())
        return trial


def fail_unclaimed(handle: StudyHandle, trials: list[FrozenTrial]) -> bool:
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
        if fail_and_retry(handle, t.number, UNCLAIMED) is not None:
            failed = True
            print(
                f"trial {t.number} was taken by a worker that lost the study storage before "
                "it could claim it: marked failed, its parameters queued again",
                file=sys.stderr,
            )
    return failed


def finish_trial(
    handle: StudyHandle,
    trial: optuna.Trial,
    value: float | None,
    state: TrialState,
    reason: str | None,
) -> FrozenTrial | None:
    try:
        if reason is not None:
            trial.set_user_attr("fail_reason", reason)
        return handle.study.tell(trial, value, state=state)
    except (optuna.exceptions.UpdateFinishedTrialError, ValueError):
        # Optuna's tell raises ValueError for a trial no longer RUNNING.
        if handle.storage.get_trial(handle.trial_id(trial.number)).state.is_finished():
            return None  # taken for dead meanwhile, failed and retried by another worker
        raise
