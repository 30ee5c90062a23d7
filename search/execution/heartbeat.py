"""A running trial's heartbeat, from a thread of its own, and the check that fails the trials of
workers gone silent, with their reason."""

from __future__ import annotations

import contextlib
import copy
import threading
from datetime import timedelta

import sqlalchemy
from optuna.exceptions import UpdateFinishedTrialError
from optuna.storages import RDBStorage
from optuna.trial import TrialState

from search.execution.handle import StudyHandle
from search.storage import HEARTBEAT_REASON

# The two tables of Optuna's schema the check reads (names and columns as stored).
_TRIALS = sqlalchemy.table(
    "trials",
    sqlalchemy.column("trial_id", sqlalchemy.Integer),
    sqlalchemy.column("study_id", sqlalchemy.Integer),
    sqlalchemy.column("state", sqlalchemy.String),
)
_BEATS = sqlalchemy.table(
    "trial_heartbeats",
    sqlalchemy.column("trial_id", sqlalchemy.Integer),
    sqlalchemy.column("heartbeat", sqlalchemy.DateTime),
)


class Heartbeat:
    """Beats for one trial from a thread; unlike Optuna's, it survives a dropped connection
    (a live worker must not be taken for dead because the database restarted). Nothing
    happens on a storage without heartbeats."""

    def __init__(self, handle: StudyHandle, number: int) -> None:
        self.handle, self.number = handle, number
        self.done = threading.Event()
        self.thread: threading.Thread | None = None

    def __enter__(self) -> None:
        interval = self.handle.heartbeat
        if interval is None:
            return

        def beat() -> None:
            # The first beat was recorded when the trial was claimed (take_trial). Every storage
            # call is made here, off the trial's thread: the database may be restarting.
            trial_id: int | None = None
            while not self.done.wait(interval):
                with contextlib.suppress(Exception):  # the next beat tries again
                    if trial_id is None:
                        trial_id = self.handle.trial_id(self.number)
                    self.handle.record_heartbeat(trial_id)

        self.thread = threading.Thread(target=beat, daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()


def stale_trial_ids(storage: RDBStorage, study_id: int) -> list[int]:
    """The study's RUNNING trials whose last beat is older than the storage's grace period, by
    the database's clock (as Optuna's own check decides)."""
    interval = storage.get_heartbeat_interval()
    assert interval is not None, "only a storage with heartbeats has stale trials"
    grace = timedelta(seconds=storage.grace_period or 2 * interval)
    # The state is an enum type on PostgreSQL, a string on SQLite: compared as text on both.
    running = sqlalchemy.cast(_TRIALS.c.state, sqlalchemy.String) == TrialState.RUNNING.name
    query = (
        sqlalchemy.select(_TRIALS.c.trial_id, _BEATS.c.heartbeat)
        .join(_BEATS, _BEATS.c.trial_id == _TRIALS.c.trial_id)
        .where(_TRIALS.c.study_id == study_id, running)
    )
    with storage.engine.connect() as connection:
        now = connection.execute(sqlalchemy.select(sqlalchemy.func.now())).scalar_one()
        rows = connection.execute(query).all()
    now = now.replace(tzinfo=None)
    return [trial_id for trial_id, beat in rows if now - beat.replace(tzinfo=None) > grace]


def fail_stale_trials(handle: StudyHandle) -> list[int]:
    """Optuna's `fail_stale_trials`, except that each trial it fails first records why in
    `fail_reason` (Optuna's refuses attributes once a trial is failed, so it leaves none), then
    runs the storage's stale-trial callback (the retry). A trial failed meanwhile by another
    worker is left to it. Returns the trial ids this call failed."""
    storage = handle.storage
    if handle.heartbeat is None or not isinstance(storage, RDBStorage):
        return []
    failed = []
    for trial_id in stale_trial_ids(storage, handle.study_id):
        try:
            storage.set_trial_user_attr(trial_id, "fail_reason", HEARTBEAT_REASON)
            if storage.set_trial_state_values(trial_id, state=TrialState.FAIL):
                failed.append(trial_id)
        except UpdateFinishedTrialError:
            continue  # another worker failed it first, or its own worker finished it
    callback = storage.get_heartbeat_stale_trial_callback()
    if callback is not None:
        for trial_id in failed:
            callback(handle.study, copy.deepcopy(storage.get_trial(trial_id)))
    return failed
