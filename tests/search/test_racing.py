"""The race of finalists: who races, who wins, and that it is exact, shared and resumable."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

import optuna
import pytest
from optuna.trial import TrialState

from models import FAMILIES
from search.execution.handle import StudyHandle
from search.execution.loop import take_trial
from search.execution.trials import fail_and_retry
from search.storage import SlotLock, StorageSpec
from search.study import RACE_AFTER, Plan, Step, pick_trial, race_of
from search.study.racing import RACE_OF, RACE_SEED, Standing, finalists, intensify
from search.study.space import family_default_params, suggest_config
from search.study.states import FINISHED
from tests.helpers import assert_one_line_error, load_study, run_cli
from tests.search.workers import start, wait_for

DEFAULT = family_default_params("siamese")
RACE = ["--epochs", "2", "--train-pairs", "100", "--val-pairs", "50", "--finalists", "2",
        "--race-seeds", "2"]  # fmt: skip
TINY_DATA = ["--epochs", "1", "--train-pairs", "100", "--val-pairs", "50"]
NO_LOCK = SlotLock(StorageSpec("sqlite", "sqlite:///unused.db"), "s")  # one process: no lock


def add(study: optuna.Study, params: dict[str, object], value: float | None) -> None:
    """A search trial with these parameters, complete with `value` (pruned when None)."""
    study.enqueue_trial(params)
    trial = study.ask()
    suggest_config(trial, epochs=1)
    study.tell(trial, value, state=TrialState.COMPLETE if value is not None else TrialState.PRUNED)


def searched() -> optuna.Study:
    """Six search trials: the default at 0.97, two better, a duplicate, a pruned one."""
    return searched_handle().study


def searched_handle() -> StudyHandle:
    """searched(), with the storage it was made on, for the worker loop's functions."""
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(direction="maximize", storage=storage)
    add(study, family_default_params("mlp"), 0.90)  # 0
    add(study, DEFAULT, 0.97)  # 1
    add(study, dict(DEFAULT, nb_filters=16), 0.98)  # 2
    add(study, dict(DEFAULT, nb_filters=48), 0.99)  # 3
    add(study, dict(DEFAULT, nb_filters=48), 0.95)  # 4, a retry of the same configuration
    add(study, dict(DEFAULT, nb_filters=8), None)  # 5, pruned
    return StudyHandle.of(study, storage)


def test_the_finalists_are_the_default_and_the_best_other_configurations() -> None:
    trials = searched().trials
    assert [t.number for t in finalists(trials, 2, default_params=DEFAULT)] == [1, 3, 2]
    assert [t.number for t in finalists(trials, 5, default_params=DEFAULT)] == [
        1,
        3,
        2,
        0,
    ]  # one per configuration


def test_in_a_cold_study_the_default_takes_no_seat_of_its_own() -> None:
    trials = searched().trials
    assert [t.number for t in finalists(trials, 2, default_params=None)] == [3, 2]
    assert [t.number for t in finalists(trials, 5, default_params=None)] == [3, 2, 1, 0]


def test_a_cold_study_never_queues_or_races_the_default(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "cold",
                "--cold-start", "--pruner", "none", *RACE, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "cold study: the default configuration was neither queued nor raced" in r.stdout
    # a cold start explores: the structure at random, the training settings from TPE
    assert "20% of the search drawn at random (the structure)" in r.stdout
    study = load_study(f"sqlite:///{tmp_path}/studies/cold.db", "cold")
    assert study.user_attrs["cold_start"] is True
    trials = study.get_trials()
    assert not any(t.user_attrs.get("queued_default") for t in trials)
    assert all(t.params != family_default_params(family) for t in trials for family in FAMILIES)
    race = race_of(study)
    assert race is not None and race.complete and len(race.standings) == 2  # the 2 finalists
    assert not any(s.is_default for s in race.standings)
    assert "(default)" not in r.stdout
    assert sum(t.user_attrs.get(RACE_AFTER) == 4 for t in trials) == 2 * 2  # 2 seeds each
    # the setting is the study's: a re-run keeps it, a warm study refuses it
    r = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "cold",
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0 and "cold study" in r.stdout, r.stderr
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "warm",
                "--finalists", "0", *TINY_DATA, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "drawn at random" not in r.stdout  # the baselines show TPE every family
    r = run_cli("search.run", "--trials", "1", "--study", "warm", "--cold-start", cwd=tmp_path)
    assert_one_line_error(r, "was created without --cold-start")


def test_a_challenger_must_beat_the_leader_on_the_leaders_seeds() -> None:
    default = Standing(trial=1, values={1: 0.980, 2: 0.982}, is_default=True)
    partial = Standing(trial=2, values={1: 0.999}, is_default=False)  # missing seed 2
    better = Standing(trial=3, values={1: 0.983, 2: 0.984}, is_default=False)
    tied = Standing(trial=4, values={1: 0.983, 2: 0.984}, is_default=False)
    assert intensify([partial, default]) is default
    assert intensify([better, default, partial, tied]) is better  # the first of the tied
    assert intensify([Standing(1, {}, True), better]) is better  # a default that never ran


def test_the_race_is_queued_once_taken_in_order_and_finished_exactly() -> None:
    handle = searched_handle()
    study = handle.study
    study.enqueue_trial(family_default_params("cnn"))  # a search trial left over beyond the total
    plan = Plan(trials=6, finalists=1, seeds=2, default_params=DEFAULT)
    assert plan.progress(study.trials) == (6, 6 + 2 * 2)
    assert take_trial(handle, NO_LOCK, plan) is Step.WAIT  # the race was just queued
    runs = []
    while isinstance(trial := take_trial(handle, NO_LOCK, plan), optuna.Trial):
        runs.append(trial)
        study.tell(trial, 0.99 if trial.user_attrs[RACE_OF] == 3 else 0.98)
    leftover = study.trials[6]
    assert (
        leftover.state == TrialState.FAIL and "had its total" in leftover.user_attrs["fail_reason"]
    )
    cells = [(t.user_attrs[RACE_OF], t.user_attrs[RACE_SEED]) for t in runs]
    assert cells == [(1, 1), (3, 1), (1, 2), (3, 2)]  # seed by seed, the default first
    assert all(t.user_attrs[RACE_AFTER] == 6 for t in runs)
    assert plan.done(study.trials) and plan.progress(study.trials) == (10, 10)
    race = race_of(study)
    assert race is not None and race.complete and race.selection is not None
    assert race.selection.trial == 3 and race.selection.values == {1: 0.99, 2: 0.99}
    assert take_trial(handle, NO_LOCK, plan) is Step.DONE
    trial, why = pick_trial(study, None)
    assert trial.number == 3 and "the race's selection" in why


def test_a_race_trial_that_fails_is_run_again_as_the_same_cell() -> None:
    handle = searched_handle()
    study = handle.study
    plan = Plan(trials=6, finalists=1, seeds=1, default_params=DEFAULT)
    assert take_trial(handle, NO_LOCK, plan) is Step.WAIT
    first = take_trial(handle, NO_LOCK, plan)
    assert isinstance(first, optuna.Trial)
    frozen = fail_and_retry(handle, first.number, "worker died")  # as for a dead worker
    assert frozen is not None
    retry = study.trials[-1]
    assert retry.state == TrialState.WAITING and retry.params == frozen.params
    assert {k: retry.user_attrs[k] for k in (RACE_OF, RACE_SEED, RACE_AFTER)} == {
        k: frozen.user_attrs[k] for k in (RACE_OF, RACE_SEED, RACE_AFTER)
    }
    assert plan.progress(study.trials) == (6, 8) and not plan.done(study.trials)
    while isinstance(trial := take_trial(handle, NO_LOCK, plan), optuna.Trial):
        study.tell(trial, 0.97)
    assert plan.done(study.trials) and plan.progress(study.trials) == (8, 8)


def check_race(url: str, name: str, search: int) -> list[optuna.trial.FrozenTrial]:
    """Exactly `search` finished search trials, every race cell finished once, nothing running;
    finalists on one race seed share the seed; race runs have their finalist's parameters."""
    trials = load_study(url, name).get_trials()
    assert not [t.number for t in trials if t.state == TrialState.RUNNING]
    race = [t for t in trials if RACE_OF in t.user_attrs]
    search_trials = [t for t in trials if RACE_OF not in t.user_attrs]
    assert sum(t.state in FINISHED for t in search_trials) == search
    cells = Counter(
        (t.user_attrs[RACE_OF], t.user_attrs[RACE_SEED]) for t in race if t.state in FINISHED
    )
    candidates = {c for c, _ in cells}
    assert len(candidates) == 3 and set(cells.values()) == {1}  # 2 best + the default
    assert {s for _, s in cells} == {1, 2} and len(cells) == 6
    by_number = {t.number: t for t in trials}
    for t in race:
        assert t.params == by_number[t.user_attrs[RACE_OF]].params
    seeds = {
        (t.user_attrs[RACE_SEED], t.user_attrs["seed"]) for t in race if "seed" in t.user_attrs
    }
    assert len(seeds) == 2  # one training seed per race seed, shared by all finalists
    return trials


def ctrl_c_while_racing(args: list[str], url: str, cwd: Path) -> None:
    """Run search.run with `args` and stop it (Ctrl-C) once a race trial has reported."""
    default_sigint = lambda: signal.signal(signal.SIGINT, signal.SIG_DFL)  # noqa: E731
    p = subprocess.Popen([sys.executable, "-m", "search.run", *args], cwd=cwd,
                         stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True,
                         preexec_fn=default_sigint)  # fmt: skip

    def racing() -> bool:
        return any(
            RACE_OF in t.user_attrs and t.state == TrialState.RUNNING and t.intermediate_values
            for t in load_study(url, "race").get_trials()
        )

    wait_for(racing, timeout=240, step=0.1)
    p.send_signal(signal.SIGINT)
    _, err = p.communicate(timeout=120)
    assert p.returncode == 130, err


def test_a_race_with_two_workers_on_a_journal_resumes_after_ctrl_c(tmp_path: Path) -> None:
    url = str(tmp_path / "studies" / "race.journal")
    # Race runs of 12 epochs on 300 pairs last long enough to be caught running.
    args = ["--trials", "4", "--workers", "2", "--study", "race", "--storage", url,
            "--epochs", "12", "--train-pairs", "300", "--val-pairs", "100",
            "--finalists", "2", "--race-seeds", "2"]  # fmt: skip
    ctrl_c_while_racing(args, url, tmp_path)
    stopped = [
        t
        for t in load_study(url, "race").get_trials()
        if RACE_OF in t.user_attrs and t.state == TrialState.FAIL
    ]
    assert stopped, "the interrupted race run is failed, and queued again"
    r = run_cli("search.run", *args, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "selects trial #" in r.stdout
    trials = check_race(url, "race", 4)
    assert len({t.user_attrs.get("worker") for t in trials}) >= 2


@pytest.mark.postgres
def test_a_race_with_two_workers_on_postgresql(pg_url: str, tmp_path: Path) -> None:
    args = ["--trials", "4", "--study", "race", "--storage", pg_url, "--workers", "1", *RACE]
    r = run_cli("search.run", *args, "--create-only", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    procs = [start(args, tmp_path) for _ in range(2)]
    for proc in procs:
        _, err = proc.communicate(timeout=300)
        assert proc.returncode == 0, err
    check_race(pg_url, "race", 4)


def test_final_eval_takes_the_races_selection_and_says_why(tmp_path: Path) -> None:
    r = run_cli("search.run", "--trials", "4", "--workers", "1", "--study", "fin", *RACE,
                cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    study = load_study(f"sqlite:///{tmp_path}/studies/fin.db", "fin")
    race = race_of(study)
    assert race is not None and race.complete and race.selection is not None
    r = run_cli("search.final_eval", "--study", "fin", "--rounds", "2", "--no-ablation",
                "--ensemble", "1", cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert f"trial #{race.selection.trial}, the race's selection" in r.stdout
    result = json.loads((tmp_path / "studies" / "fin" / "final_eval.json").read_text())
    assert result["trial"] == race.selection.trial and "the race's selection" in result["selection"]


def test_a_resumed_race_with_a_smaller_total_is_one_race_for_every_worker(
    tmp_path: Path,
) -> None:
    # A race interrupted, then resumed by a command asking for fewer trials than it followed:
    # the command plans for the earlier race's total, and so do its worker processes, so the
    # waiting race trials are run, not closed, and no second race is queued.
    url = str(tmp_path / "studies" / "race.journal")
    base = ["--study", "race", "--storage", url, "--epochs", "12", "--train-pairs", "300",
            "--val-pairs", "100", "--finalists", "2", "--race-seeds", "2"]  # fmt: skip
    ctrl_c_while_racing(["--trials", "4", "--workers", "1", *base], url, tmp_path)
    r = run_cli("search.run", "--trials", "2", "--workers", "2", *base, cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "(4 search, then a race" in r.stdout
    trials = load_study(url, "race").get_trials()
    closed = [
        t for t in trials if "the search had its total" in t.user_attrs.get("fail_reason", "")
    ]
    assert not closed
    assert {t.user_attrs[RACE_AFTER] for t in trials if RACE_OF in t.user_attrs} == {4}
    check_race(url, "race", 4)
