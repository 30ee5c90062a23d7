"""Worker processes on this machine: started together, stopped together, replaced if killed."""

from __future__ import annotations

import multiprocessing
import sys
import threading
import time
from dataclasses import replace
from functools import partial

from search.execution.handle import StudyHandle
from search.execution.loop import Ending
from search.execution.progress import progress_bar, show_progress
from search.execution.trials import fail_running, worker_id
from search.execution.worker import WorkerSpec, worker_main
from search.stopping import children_start_deaf, forward_stops, quiet_spawned_processes
from search.storage import with_storage_retries


def supervise(
    handle: StudyHandle, spec: WorkerSpec, *, workers: int, stop: threading.Event
) -> Ending:
    """Run `workers` processes of `spec` until they end, and say why they ended. A worker that
    dies has its trials failed and queued again, and is replaced unless the run is stopping or
    it ended on an error of its own (exit 1)."""
    study = handle.study
    ctx = multiprocessing.get_context("spawn")
    quiet_spawned_processes()
    procs = [
        ctx.Process(target=worker_main, args=(replace(spec, index=i),)) for i in range(workers)
    ]
    with children_start_deaf():
        for p in procs:
            p.start()

    forward_stops(stop, lambda: [p.pid for p in procs if p.is_alive() and p.pid is not None])
    reported: set[int] = set()
    with progress_bar(study, spec.plan) as bar:
        while any(p.is_alive() for p in procs):
            time.sleep(1.0)
            show_progress(bar, study, spec.plan)
            for p in procs:
                if p.exitcode in (None, 0) or p.pid is None or p.pid in reported:
                    continue
                reported.add(p.pid)
                worker = worker_id(p.pid)
                lost = with_storage_retries(
                    partial(fail_running, handle, f"worker {worker} died", worker=worker),
                    f"failing the trials of worker {worker}",
                )
                if lost:
                    print(
                        f"worker {p.pid} died (exit {p.exitcode}); trial(s) {lost} "
                        "marked failed and queued again",
                        file=sys.stderr,
                    )
                if not stop.is_set() and p.exitcode != 1:
                    # a killed worker is replaced so the total is still reached
                    new = ctx.Process(target=worker_main, args=(replace(spec, index=len(procs)),))
                    with children_start_deaf():
                        new.start()
                    procs.append(new)
        show_progress(bar, study, spec.plan)
    if stop.is_set():
        return Ending.STOPPED
    if spec.deadline is not None and time.time() >= spec.deadline:
        return Ending.TIMEOUT
    return Ending.DONE
