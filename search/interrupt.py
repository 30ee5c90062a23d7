"""Ctrl-C and SIGTERM while a command starts up (imports, data loading, opening the study):
exit 130 with one line and no traceback; and a block in which they wait (setting up a study,
publishing a result), so that a stop never leaves it half-written."""

from __future__ import annotations

import os
import signal
from collections.abc import Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker

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
    """Ctrl-C and SIGTERM (a `kill`, a supervisor, `docker stop`) both raise KeyboardInterrupt,
    so a command ends the same way on either: its children ended, one line, exit 130."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.default_int_handler)


@contextmanager
def held() -> Iterator[None]:
    """Ctrl-C and SIGTERM wait until the block is done, then act as their handlers say.

    The handlers are swapped for ones that only take note: a signal mask would hold back the
    calling thread alone, and the kernel may hand a process's signal to any of its threads
    (torch's among them), whose Python handler then runs in the main thread all the same.
    Call it from the main thread."""
    caught: list[int] = []

    def note(signum: int, frame: object) -> None:
        caught.append(signum)

    previous = {signum: signal.signal(signum, note) for signum in STOPS}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(caught):
            signal.raise_signal(signum)


@contextmanager
def children_start_deaf() -> Iterator[None]:
    """Processes started in the block begin with Ctrl-C and SIGTERM blocked (a signal mask
    passes to a child), so a stop cannot reach one while its interpreter starts, where Python
    would print a fatal error; each calls `let_stops_through()` once its own handlers are in
    place, and a stop sent meanwhile arrives then. multiprocessing's resource tracker is
    started first: starting it unblocks SIGINT and SIGTERM again, in the middle of the block."""
    resource_tracker.ensure_running()
    old = signal.pthread_sigmask(signal.SIG_BLOCK, STOPS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, old)


def let_stops_through() -> None:
    signal.pthread_sigmask(signal.SIG_UNBLOCK, STOPS)
