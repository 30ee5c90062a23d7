"""How every command stops: each stop handler a process installs, in one place.

A stop is Ctrl-C (SIGINT), SIGTERM (a `kill`, a supervisor, `docker stop`) or SIGHUP (the
terminal closed), each handled alike. search.run,
search.final_eval and search.dashboard begin with `exit_quietly` (a stop while they import,
load data or open the study ends them with one line and exit 130), and then, phase by phase:

search.run (search.execution)
    setting up a study, writing a run's summary   `held()`: the stop waits for the block
    the run, worker processes under a supervisor  `forward_stops`: the run stops and every
                                                  worker hears it, even from a `kill` of
                                                  the parent alone
    one worker (a process, or the run's own)      `stop_at_next_epoch`: the trial ends at its
                                                  next epoch (failed, queued again) and no
                                                  new one is taken; exit 130
    a worker process whose parent dies            `die_with_parent`: killed at once
    processes while they start                    `children_start_deaf`, `let_stops_through`
search.final_eval (search.evaluation)
    training the rounds                           `raise_on_interrupt`: KeyboardInterrupt,
                                                  the pool ended, "nothing was written", 130
    a pool process                                `leave_stops_to_parent`
    publishing the files and the study's note     `held()`: all or none
search.dashboard
    serving                                       `end_server_on_stop`: Ctrl-C ends it with
                                                  exit 0, SIGTERM at once (it writes nothing)
search.predict
    (reads files, writes nothing)                 Python's own: Ctrl-C is a KeyboardInterrupt,
                                                  caught in main: one line, exit 130
"""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from multiprocessing import resource_tracker

STOPS = {signal.SIGINT, signal.SIGTERM, signal.SIGHUP}
PR_SET_PDEATHSIG = 1  # prctl(2)
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
    """Every stop (Ctrl-C, SIGTERM, a closed terminal's SIGHUP) raises KeyboardInterrupt, so a
    command ends the same way on each: its children ended, one line, exit 130."""
    for signum in STOPS:
        signal.signal(signum, signal.default_int_handler)


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


def stop_at_next_epoch(stop: threading.Event) -> None:
    """A worker's handlers: a stop sets `stop`, which ends the current trial at its next epoch
    and takes no new one."""
    on_stop(lambda: stop.set())
    let_stops_through()  # a stop sent while this process started arrives now


def forward_stops(stop: threading.Event, processes: Callable[[], list[int]]) -> None:
    """A supervisor's handlers: a stop sets `stop` and is sent on as SIGTERM to the live
    processes' pids. A terminal's Ctrl-C reaches every process of the group; a signal sent to
    the supervisor alone (a `kill`, a service manager) must reach its workers too."""

    def forward() -> None:
        stop.set()
        for pid in processes():
            os.kill(pid, signal.SIGTERM)

    on_stop(forward)


def on_stop(action: Callable[[], None]) -> None:
    def handler(signum: int, frame: object) -> None:
        action()

    for signum in STOPS:
        signal.signal(signum, handler)


def leave_stops_to_parent() -> None:
    """A pool process ignores Ctrl-C and a closed terminal, which its parent handles by ending
    the pool; a SIGTERM of its own ends it."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGHUP, signal.SIG_IGN)
    let_stops_through()  # blocked while the process started (children_start_deaf)


def end_server_on_stop() -> None:
    """Ctrl-C raises KeyboardInterrupt in the serving loop; SIGTERM ends the process at once:
    a server that writes nothing has nothing to finish."""
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)


def die_with_parent() -> None:
    """Linux: a worker process is killed the moment its parent dies, even by kill -9, so no
    worker of a dead run goes on writing to a study that a new run may already own."""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGKILL)
