"""A study is set up whole or made again, and a finished study is not extended backwards."""

from __future__ import annotations

import json
from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.study import RACE_AFTER, race_of
from search.study.racing import RACE_SEED, REUSED_FROM
from search.study.space import family_default_params
from tests.helpers import load_study, run_cli

TINY_DATA = ["--train-pairs", "100", "--val-pairs", "50", "--workers", "1"]


def test_a_study_left_half_set_up_is_made_again_with_the_flags_given(tmp_path: Path) -> None:
    # What a run killed between its set-up writes leaves: some settings, one baseline queued.
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/half.db"
    study = optuna.create_study(study_name="half", storage=url, direction="maximize")
    study.set_user_attr("dataset", "mnist5k")
    study.set_user_attr("epochs", 20)
    study.enqueue_trial(family_default_params("mlp"), user_attrs={"queued_default": True})
    r = run_cli("search.run", "--study", "half", "--trials", "2", "--epochs", "1",
                "--finalists", "0", *TINY_DATA, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "was left half set up by a run that was stopped: made again" in r.stderr
    study = load_study(url, "half")
    assert study.user_attrs["epochs"] == 1 and study.user_attrs["set_up"] is True
    baselines = [t for t in study.trials if t.user_attrs.get("queued_default")]
    assert len(baselines) == 3  # queued once, by the run that set it up
    assert sum(t.state in (TrialState.COMPLETE, TrialState.PRUNED) for t in study.trials) == 2


def test_a_smaller_total_on_a_raced_study_does_nothing(tmp_path: Path) -> None:
    args = ["search.run", "--study", "r", "--epochs", "1", "--finalists", "1", "--race-seeds",
            "1", *TINY_DATA]  # fmt: skip
    r = run_cli(*args, "--trials", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{tmp_path}/studies/r.db"
    before = len(load_study(url, "r").trials)
    r = run_cli(*args[:2], "r", "--trials", "2", "--workers", "1", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    assert "already has" in r.stdout and "nothing to do" in r.stdout
    trials = load_study(url, "r").trials
    assert len(trials) == before
    assert {t.user_attrs[RACE_AFTER] for t in trials if RACE_AFTER in t.user_attrs} == {4}


def test_extending_a_raced_study_reuses_the_race_cells_already_run(tmp_path: Path) -> None:
    args = ["search.run", "--study", "x", "--epochs", "1", "--finalists", "2", "--race-seeds",
            "2", "--pruner", "none", *TINY_DATA]  # fmt: skip
    r = run_cli(*args, "--trials", "4", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    url = f"sqlite:///{tmp_path}/studies/x.db"
    first = [t for t in load_study(url, "x").trials if t.user_attrs.get(RACE_AFTER) == 4]
    r = run_cli(*args, "--trials", "6", cwd=tmp_path)
    assert r.returncode == 0, r.stderr
    trials = load_study(url, "x").trials
    second = [t for t in trials if t.user_attrs.get(RACE_AFTER) == 6]
    assert len(second) == 3 * 2  # the default and 2 finalists on 2 seeds, every cell there
    earlier = {t.number: t for t in first}
    reused = [t for t in second if REUSED_FROM in t.user_attrs]
    assert reused, "the default raced again on the same seeds"
    for t in reused:
        source = earlier[t.user_attrs[REUSED_FROM]]
        assert (t.params, t.value) == (source.params, source.value)
        assert t.user_attrs[RACE_SEED] == source.user_attrs[RACE_SEED]
    cells = {(json.dumps(t.params, sort_keys=True), t.user_attrs[RACE_SEED]) for t in first}
    trained = [t for t in second if REUSED_FROM not in t.user_attrs]
    assert all((json.dumps(t.params, sort_keys=True), t.user_attrs[RACE_SEED]) not in cells
               for t in trained)  # fmt: skip
    assert len(trials) == 4 + len(first) + 2 + len(second)
    race = race_of(load_study(url, "x"))
    assert race is not None and race.after == 6 and race.complete
