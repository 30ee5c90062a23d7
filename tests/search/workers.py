"""Helpers for tests that run real worker processes against PostgreSQL."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from search.storage import open_storage
from search.storage.spec import parse_storage
from search.study.budget import OVER_BUDGET
from search.study.states import FINISHED
from tests.helpers import load_study


def start(args: list[str], cwd: Path) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [sys.executable, "-m", "search.run", *args],
        cwd=cwd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONUNBUFFERED": "1"},
    )


def wait_for(condition: Callable[[], object], timeout: float = 120, step: float = 0.2) -> object:
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            found = condition()
        except Exception:
            found = None
        if found:
            return found
        time.sleep(step)
    raise AssertionError("condition not met in time")


def running_trial_of(
    url: str, name: str, pids: set[int], *, training: bool = False
) -> tuple[int, int] | None:
    """(trial number, pid) of a RUNNING trial owned by one of `pids`; with `training`, only one
    that has reported an epoch (so every parameter is sampled)."""
    for t in load_study(url, name).get_trials(states=(TrialState.RUNNING,)):
        if training and not t.intermediate_values:
            continue
        worker = t.user_attrs.get("worker", "")
        pid = int(worker.rsplit(":", 1)[1]) if ":" in worker else -1
        if pid in pids:
            return t.number, pid
    return None


def check_exact(url: str, name: str, n: int) -> list[optuna.trial.FrozenTrial]:
    trials = load_study(url, name).get_trials()
    # a trial over a parameter budget was never trained and does not count toward --trials
    counted = [t for t in trials if t.user_attrs.get(OVER_BUDGET, 0) <= 0]
    assert sum(t.state in FINISHED for t in counted) == n
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    assert len({t.number for t in trials}) == len(trials)
    return trials


def open_in_rounds(urls: list[str], barrier: Any, results: Any) -> None:
    """Process body: open each storage in turn, in step with the other processes."""
    for url in urls:
        barrier.wait(timeout=60)
        try:
            open_storage(parse_storage(url), heartbeat=5)
            results.put((url, "ok"))
        except Exception as e:  # the test reports what went wrong
            results.put((url, f"{type(e).__name__}: {e}"))
