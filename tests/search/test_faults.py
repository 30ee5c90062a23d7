"""Real worker processes against the real PostgreSQL server, with faults."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from pathlib import Path

import optuna
import pytest
from optuna.storages import RetryHeartbeatStaleTrialCallback as Retry
from optuna.trial import TrialState
from tqdm import tqdm

from models import Config
from search.execution.handle import StudyHandle
from search.execution.heartbeat import Heartbeat, fail_stale_trials, stale_trial_ids
from search.execution.loop import finish_trial
from search.execution.progress import show_progress
from search.storage import HEARTBEAT_REASON, STORAGE_ERRORS, open_storage
from search.storage.spec import parse_storage
from search.study import Plan, recorded_params
from search.study.states import FINISHED
from tests.helpers import load_study
from tests.search.postgres import allow_connections
from tests.search.workers import check_exact, running_trial_of, start, wait_for

pytestmark = pytest.mark.postgres

SMALL = ["--val-pairs", "100", "--heartbeat", "1", "--finalists", "0"]


def create(
    url: str, name: str, cwd: Path, epochs: int, trials: int, train_pairs: int = 300
) -> list[str]:
    args = ["--study", name, "--storage", url, "--trials", str(trials), "--workers", "1", *SMALL]
    args += ["--train-pairs", str(train_pairs)]
    p = start([*args, "--epochs", str(epochs), "--create-only", "--no-queued-defaults"], cwd)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    return args


def test_four_workers_reach_exactly_the_total(pg_url: str, tmp_path: Path) -> None:
    args = create(pg_url, "four", tmp_path, epochs=2, trials=12)
    procs = [start(args, tmp_path) for _ in range(4)]
    for p in procs:
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    trials = check_exact(pg_url, "four", 12)
    assert len({t.user_attrs["worker"] for t in trials}) >= 3


def test_kill_9_twice_trials_are_retried_and_nothing_is_lost(pg_url: str, tmp_path: Path) -> None:
    args = create(pg_url, "kill", tmp_path, epochs=8, trials=10)
    procs = {p.pid: p for p in (start(args, tmp_path) for _ in range(3))}
    killed_trials = []
    for _ in range(2):
        # killed in the middle of training, when the trial has all its parameters
        found = wait_for(lambda: running_trial_of(pg_url, "kill", set(procs), training=True))
        number, pid = found  # type: ignore[misc]
        os.kill(pid, signal.SIGKILL)
        procs.pop(pid).wait()
        killed_trials.append(number)
        new = start(args, tmp_path)  # as an orchestrator would restart the container
        procs[new.pid] = new
    for p in procs.values():
        _, err = p.communicate(timeout=300)
        assert p.returncode == 0, err
    trials = check_exact(pg_url, "kill", 10)
    by_number = {t.number: t for t in trials}
    for number in killed_trials:
        assert by_number[number].state == TrialState.FAIL
        assert by_number[number].user_attrs["fail_reason"] == HEARTBEAT_REASON
        retries = [t for t in trials if Retry.retried_trial_number(t) == number]
        assert retries and any(t.state in FINISHED for t in retries)
        assert retries[0].params == by_number[number].params
        assert retries[0].user_attrs["retry_of_reason"] == HEARTBEAT_REASON


def test_a_silent_trial_is_failed_with_its_reason_and_a_beating_one_is_left(pg_url: str) -> None:
    storage = open_storage(parse_storage(pg_url), heartbeat=1)
    s = optuna.create_study(study_name="silent", storage=storage)
    handle = StudyHandle.of(s, storage)
    space = {"x": optuna.distributions.FloatDistribution(0, 1)}
    silent, beating = s.ask(space), s.ask(space)
    handle.record_heartbeat(handle.trial_id(silent.number))
    time.sleep(3.5)  # past the grace period of three beats
    handle.record_heartbeat(handle.trial_id(beating.number))
    assert fail_stale_trials(handle) == [handle.trial_id(silent.number)]
    assert fail_stale_trials(handle) == []  # failed once only
    trials = s.get_trials()
    assert [t.state for t in trials[:2]] == [TrialState.FAIL, TrialState.RUNNING]
    assert trials[0].user_attrs["fail_reason"] == HEARTBEAT_REASON
    assert "fail_reason" not in trials[1].user_attrs
    (retry,) = trials[2:]
    assert retry.state == TrialState.WAITING and retry.params == trials[0].params
    assert retry.user_attrs["retry_of_reason"] == HEARTBEAT_REASON
    assert "fail_reason" not in retry.user_attrs


def test_sigterm_ends_the_current_trial_cleanly(pg_url: str, tmp_path: Path) -> None:
    args = create(pg_url, "term", tmp_path, epochs=200, trials=3)
    p = start(args, tmp_path)
    number, _ = wait_for(lambda: running_trial_of(pg_url, "term", {p.pid}))  # type: ignore[misc]
    p.send_signal(signal.SIGTERM)
    _, err = p.communicate(timeout=60)
    assert p.returncode == 130
    assert "interrupted" in err and "Traceback" not in err
    trials = load_study(pg_url, "term").get_trials()
    assert not [t for t in trials if t.state == TrialState.RUNNING]
    stopped = trials[number]
    assert stopped.state == TrialState.FAIL and "stopped" in stopped.user_attrs["fail_reason"]
    assert [t.state for t in trials if t.number > number] == [TrialState.WAITING]


def test_a_database_restart_loses_nothing(pg_url: str, tmp_path: Path) -> None:
    args = create(pg_url, "restart", tmp_path, epochs=6, trials=8)
    procs = [start(args, tmp_path) for _ in range(2)]
    wait_for(lambda: len(load_study(pg_url, "restart").get_trials(states=FINISHED)) >= 1)
    version = os.listdir("/etc/postgresql")[0]
    subprocess.run(
        ["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart", "-m", "fast"],
        check=True,
        timeout=60,
    )
    for p in procs:
        _, err = p.communicate(timeout=300)
        # Each worker either rode out the restart or said in one line what to do.
        assert p.returncode == 0 or "re-run the same command" in err, err
        assert "Traceback" not in err
    rerun = start(args, tmp_path)
    _, err = rerun.communicate(timeout=300)
    assert rerun.returncode == 0, err
    check_exact(pg_url, "restart", 8)


def test_the_progress_bar_waits_out_a_database_it_cannot_read(pg_url: str) -> None:
    storage = open_storage(parse_storage(pg_url), heartbeat=5)
    s = optuna.create_study(study_name="bar", storage=storage, direction="maximize")
    s.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    name = pg_url.rsplit("/", 1)[1]
    plan = Plan(trials=8, finalists=0, seeds=1)
    with tqdm(total=8, disable=True) as bar:
        show_progress(bar, s, plan, best=True)
        assert bar.n == 3 and bar.postfix == f"best={s.best_value:.4f}"
        allow_connections(name, False)
        with pytest.raises(STORAGE_ERRORS):  # the database is out of reach
            s.get_trials(deepcopy=False)
        show_progress(bar, s, plan, best=True)  # and the bar only stays where it was
        assert bar.n == 3


def test_a_heartbeat_starts_while_the_database_is_out_of_reach(pg_url: str) -> None:
    storage = open_storage(parse_storage(pg_url), heartbeat=1)
    s = optuna.create_study(study_name="beat", storage=storage)
    handle = StudyHandle.of(s, storage)
    trial = s.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    handle.record_heartbeat(handle.trial_id(trial.number))  # the claim's beat
    name = pg_url.rsplit("/", 1)[1]
    allow_connections(name, False)  # the database restarts between the claim and the training
    with Heartbeat(handle, trial.number):  # starting it makes no storage call
        time.sleep(1.5)
        allow_connections(name, True)
        time.sleep(3.0)  # past the grace period of three beats since the claim
        # It beat again once the database was back, so the trial is not taken for dead.
        assert stale_trial_ids(storage, handle.study_id) == []


def test_a_trial_cut_off_from_the_database_is_run_again(pg_url: str, tmp_path: Path) -> None:
    # The default configuration, not a random draw: a draw may train 300 pairs in 0.05 s an
    # epoch, ending before two reports are seen. The default takes about 0.2 s on 1,000 pairs.
    args = create(pg_url, "cut", tmp_path, epochs=20, trials=1, train_pairs=1000)
    load_study(pg_url, "cut").enqueue_trial(recorded_params(Config()))
    p = start(args, tmp_path)
    number, _ = wait_for(lambda: running_trial_of(pg_url, "cut", {p.pid}, training=True))  # type: ignore[misc]
    # The cut must span the end of an epoch, where the trial reports: on a busy machine an
    # epoch takes seconds, so it lasts three epochs as timed here, and at least 3 s.
    reported = lambda: len(load_study(pg_url, "cut").trials[number].intermediate_values)  # noqa: E731
    for _ in range(2):  # the first wait ends at a report, the second times a whole epoch
        seen, begun = reported(), time.time()
        wait_for(lambda: reported() > seen, step=0.05)  # noqa: B023
    epoch = time.time() - begun
    name = pg_url.rsplit("/", 1)[1]
    allow_connections(name, False)
    time.sleep(max(3.0, 3 * epoch))
    allow_connections(name, True)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 0, err
    assert f"trial {number} lost the study storage" in err and "run again" in err
    trials = check_exact(pg_url, "cut", 1)
    cut = trials[number]
    assert cut.state == TrialState.FAIL
    assert cut.user_attrs["fail_reason"].startswith("lost the study storage")
    retries = [t for t in trials if Retry.retried_trial_number(t) == number]
    assert len(retries) == 1 and retries[0].state in FINISHED
    assert retries[0].params == cut.params


def test_a_trial_failed_by_another_worker_is_not_told_again(pg_url: str) -> None:
    storage = open_storage(parse_storage(pg_url))
    s = optuna.create_study(study_name="told", storage=storage)
    handle = StudyHandle.of(s, storage)
    trial = s.ask({"x": optuna.distributions.FloatDistribution(0, 1)})
    storage.set_trial_state_values(handle.trial_id(trial.number), state=TrialState.FAIL)  # stale
    assert finish_trial(handle, trial, 0.5, TrialState.COMPLETE, None) is None
    assert finish_trial(handle, trial, None, TrialState.FAIL, "interrupted") is None
    assert [t.state for t in s.get_trials()] == [TrialState.FAIL]


def test_a_trial_taken_by_a_worker_that_lost_the_database_at_once_is_run_again(
    pg_url: str, tmp_path: Path
) -> None:
    # A worker whose connection dropped while it took a trial (the insert committed, the reply
    # lost) leaves a RUNNING trial that no worker claims and that never beats.
    args = create(pg_url, "unclaimed", tmp_path, epochs=2, trials=2)
    left = load_study(pg_url, "unclaimed").ask()
    p = start(args, tmp_path)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 0, err
    assert f"trial {left.number} was taken by a worker that lost the study storage" in err
    trials = check_exact(pg_url, "unclaimed", 2)
    assert trials[left.number].state == TrialState.FAIL
    assert [t.number for t in trials if Retry.retried_trial_number(t) == left.number]
