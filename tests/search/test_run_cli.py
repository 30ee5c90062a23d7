from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from search.study import queued_defaults, recorded_params
from search.study.states import FINISHED
from tests.helpers import TINY, load_study, run_cli, run_tool


def states(study: optuna.Study) -> list[TrialState]:
    return [t.state for t in study.get_trials()]


def test_end_to_end_with_sqlite_and_the_optuna_cli(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "e2e", *TINY,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "best validation accuracy" in r.stdout
    assert "optuna-dashboard sqlite:///studies/e2e.db" in r.stdout
    assert "python -m search.final_eval --study e2e" in r.stdout
    url = f"sqlite:///{tmp_path}/studies/e2e.db"
    study = load_study(url, "e2e")
    assert sum(s in FINISHED for s in states(study)) == 4
    assert study.user_attrs["epochs"] == 2 and study.user_attrs["dataset"] == "mnist5k"
    assert study.metric_names == ["validation accuracy"]  # not "Objective 0" in the dashboard
    first = study.trials[:3]  # a new study starts from each family's default configuration
    assert [t.params for t in first] == [recorded_params(c) for c in queued_defaults(None)]
    assert all(t.user_attrs["queued_default"] for t in first)

    cli = run_tool("optuna", "trials", "--storage", url, "--study-name", "e2e", "-f", "json",
                  cwd=tmp_path)  # fmt: skip
    assert cli.returncode == 0, cli.stderr
    assert len(json.loads(cli.stdout)) == 4

    again = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "e2e",
                    cwd=tmp_path)  # fmt: skip
    assert again.returncode == 0, again.stderr
    assert "nothing to do" in again.stdout
    assert len(load_study(url, "e2e").trials) == 4


def test_trials_of_two_nets_are_stored_with_the_study_and_kept_on_a_rerun(tmp_path: Path) -> None:
    args = ["search.run", "--trials", "3", "--workers", "1", "--study", "two", "--epochs", "5",
            "--train-pairs", "100", "--val-pairs", "50", "--finalists", "0"]  # fmt: skip
    r = run_cli(*args, "--trial-nets", "2", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "2 nets x 3 epochs per trial" in r.stdout  # 60% of --epochs 5
    study = load_study(f"sqlite:///{tmp_path}/studies/two.db", "two")
    assert (study.user_attrs["trial_nets"], study.user_attrs["trial_epochs"]) == (2, 3)
    assert all(sorted(t.intermediate_values) == [1, 2, 3] for t in study.trials)
    again = run_cli(*args, "--trial-nets", "1", cwd=tmp_path)
    assert again.returncode == 2
    assert "created with --trial-nets 2, not 1" in again.stderr


def test_same_seed_reproduces_the_same_trials(tmp_path: Path) -> None:
    for name in ("a", "b"):
        r = run_cli("search.run", "--trials", "5", "--workers", "1", "--seed", "7",
                    "--study", name, *TINY, cwd=tmp_path)  # fmt: skip
        assert r.returncode == 0, r.stderr
    a, b = (load_study(f"sqlite:///{tmp_path}/studies/{n}.db", n).trials for n in ("a", "b"))
    assert [t.params for t in a] == [t.params for t in b]
    assert [t.value for t in a] == [t.value for t in b]
    assert [t.state for t in a] == [t.state for t in b]


def test_a_killed_run_resumes_to_exactly_the_total(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path}/studies/resume.db"
    args = ["--trials", "8", "--workers", "1", "--study", "resume", "--epochs", "4",
            "--train-pairs", "200", "--val-pairs", "100", "--finalists", "0"]  # fmt: skip
    with open(tmp_path / "first.log", "w") as log:  # the run polled here like a dashboard would
        proc = subprocess.Popen(
            [sys.executable, "-m", "search.run", *args],
            cwd=tmp_path, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
    deadline = time.time() + 120
    while time.time() < deadline and proc.poll() is None:
        time.sleep(0.3)
        try:
            study = load_study(url, "resume")
        except Exception:  # not created yet
            continue
        s = states(study)
        if sum(x in FINISHED for x in s) >= 2 and TrialState.RUNNING in s:
            break
    assert proc.poll() is None, (tmp_path / "first.log").read_text()
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    before = states(load_study(url, "resume"))
    assert TrialState.RUNNING in before and sum(x in FINISHED for x in before) < 8

    r = run_cli("search.run", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "left RUNNING by an interrupted run" in r.stderr
    study = load_study(url, "resume")
    after = states(study)
    assert sum(x in FINISHED for x in after) == 8
    assert TrialState.RUNNING not in after
    retried = [t for t in study.trials if "failed_trial" in t.system_attrs]
    assert retried and all(t.state in FINISHED for t in retried)


def check_parallel(url: str, tmp_path: Path, n: int) -> None:
    r = run_cli("search.run", "--trials", str(n), "--workers", "2", "--study", "par",
                "--storage", url, *TINY, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    study = load_study(url, "par")
    trials = study.trials
    assert sum(t.state in FINISHED for t in trials) == n
    assert TrialState.RUNNING not in states(study)
    assert len({t.number for t in trials}) == len(trials)
    assert len({t.user_attrs["worker"] for t in trials}) == 2  # both workers took trials


@pytest.mark.postgres
def test_two_workers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    check_parallel(pg_url, tmp_path, 10)


def test_two_workers_on_a_journal_file(tmp_path: Path) -> None:
    check_parallel(str(tmp_path / "par.journal"), tmp_path, 10)


def test_sqlite_is_never_shared_by_several_processes(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "2", "--workers", "2", "--storage",
                "sqlite:///studies/x.db", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 2
    assert "one process only" in r.stderr and "Traceback" not in r.stderr
    assert not (tmp_path / "studies").exists()
