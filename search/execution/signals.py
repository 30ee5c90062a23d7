"""How a worker process hears a stop: from its user, and from its parent's death."""

from __future__ import annotations

import ctypes
import multiprocessing
import os
import signal
import sys
import threading

from search.interrupt import let_stops_through

PR_SET_PDEATHSIG = 1  # prctl(2)


def install_stop_handlers(stop: threading.Event) -> None:
    """SIGINT and SIGTERM end the current trial at its next epoch and take no new one."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    signal.signal(signal.SIGINT, handler)
    signal.signal(signal.SIGTERM, handler)
    let_stops_through()  # a stop sent while this process started arrives now


def die_with_parent() -> None:
    """Linux: a worker process is killed the moment its parent dies, even by kill -9, so no
    worker of a dead run goes on writing to a study that a new run may already own. (A signal
    to the parent reaches its workers as a clean stop; see search.execution.supervisor.)"""
    parent = multiprocessing.parent_process()
    if parent is None or not sys.platform.startswith("linux"):
        return
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)
    if os.getppid() != parent.pid:  # the parent died before the line above
        os.kill(os.getpid(), signal.SIGKILL)
