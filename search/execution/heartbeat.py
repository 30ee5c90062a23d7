"""A running trial's heartbeat, from a thread of its own."""

from __future__ import annotations

import contextlib
import threading

from search.execution.handle import StudyHandle


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
        trial_id = self.handle.trial_id(self.number)

        def beat() -> None:
            # The first beat was recorded when the trial was claimed (take_trial).
            while not self.done.wait(interval):
                with contextlib.suppress(Exception):  # the next beat tries again
                    self.handle.record_heartbeat(trial_id)

        self.thread = threading.Thread(target=beat, daemon=True)
        self.thread.start()

    def __exit__(self, *exc: object) -> None:
        self.done.set()
        if self.thread is not None:
            self.thread.join()
