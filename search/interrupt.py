"""Ctrl-C and SIGTERM while a command starts up (imports, data loading, opening the study):
exit 130 with one line and no traceback; and a block in which they wait (setting up a study,
publishing a result), so that a stop never leaves it half-written."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager

STOPS = {signal.SIGINT, signal.SIGTERM}
WORKER = "DIGIT_PAIRS_WORKER"  # set for the worker processes a command spawns


def exit_quietly(prog: str) -> None:
    """Until the command installs its own handlers, a stop ends the process at once: nothing
    it has started so far needs finishing (a storage write in progress is held back by
    `held()`). A worker process (spawned) exits silently; the command prints the one line."""

    def stop(signum: int, frame: object) -> None:
        if not os.environ.get(WORKER):
            os.write(2, f"{prog}: interrupted while starting; re-run the command\n".encode())
        os._exit(130)

    for signum in STOPS:
        signal.signal(signum, stop)


def quiet_spawned_processes() -> None:
    """Processes this command spawns from now on exit silently on a stop while they start
    up: the command alone says so."""
    os.environ[WORKER] = "1"


def raise_on_interrupt() -> None:
    """Back to Python's own handling: Ctrl-C raises KeyboardInterrupt, SIGTERM terminates."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


@contextmanager
def held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then act as their handlers say."""
    signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
