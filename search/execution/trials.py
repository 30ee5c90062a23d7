"""Failing and retrying trials, and the name a trial gives its worker."""

from __future__ import annotations

import contextlib
import os
import socket
import warnings

import optuna
from optuna.trial import FrozenTrial, TrialState

from search.execution.handle import StudyHandle
from search.storage import MAX_RETRY, Retry


def worker_id(pid: int | None = None) -> str:
    """How a trial names the process that runs it: host:pid (this process by default)."""
    return f"{socket.gethostname()}:{pid if pid is not None else os.getpid()}"


def fail_and_retry(handle: StudyHandle, number: int, reason: str) -> FrozenTrial | None:
    """Mark RUNNING trial `number` failed with `reason` and queue its parameters again.

    Returns None when the trial had already finished (another process got there first).
    """
    storage, trial_id = handle.storage, handle.trial_id(number)
    try:
        storage.set_trial_user_attr(trial_id, "fail_reason", reason)
        if not storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
            return None
    except optuna.exceptions.UpdateFinishedTrialError:
        return None
    frozen = storage.get_trial(trial_id)
    retry(handle.study, frozen)
    return frozen


def retry(study: optuna.Study, frozen: FrozenTrial, *, max_retry: int | None = MAX_RETRY) -> None:
    """Queue a failed trial's parameters as a WAITING trial, as the heartbeat callback does;
    a configuration whose runs died `max_retry` times is not queued again (None: no limit)."""
    with contextlib.suppress(ValueError), warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        Retry(max_retry=max_retry)(study, frozen)


def fail_running(handle: StudyHandle, reason: str, worker: str | None = None) -> list[int]:
    """Fail and retry RUNNING trials (of one worker, or all); returns their numbers."""
    numbers = []
    for t in handle.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        mine = worker is None or t.user_attrs.get("worker") == worker
        if mine and fail_and_retry(handle, t.number, reason) is not None:
            numbers.append(t.number)
    return numbers
