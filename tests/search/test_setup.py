"""A study is set up whole or made again, and a finished study is not extended backwards."""

from __future__ import annotations

from pathlib import Path

import optuna
from optuna.trial import TrialState

from search.study import RACE_AFTER, baseline_params
from tests.helpers import load_study, run_cli

TINY_DATA = ["--train-pairs", "100", "--val-pairs", "50", "--workers", "1"]


def test_a_study_left_half_set_up_is_made_again_with_the_flags_given(tmp_path: Path) -> None:
    # What a run killed between its set-up writes leaves: some settings, one baseline queued.
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/half.db"
    study = optuna.create_study(study_name="half", storage=url, direction="maximize")
    study.set_user_attr("dataset", "mnist5k")
    study.set_user_attr("epochs", 20)
    study.enqueue_trial(baseline_params("mlp"), user_attrs={"baseline": True})
    r = run_cli("search.run", "--study", "half", "--trials", "2", "--epochs", "1",
                "--finalists", "0", *TINY_DATA, cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    assert "was left half set up by a run that was stopped: made again" in r.stderr
    study = load_study(url, "half")
    assert study.user_attrs["epochs"] == 1 and study.user_attrs["set_up"] is True
    baselines = [t for t in study.trials if t.user_attrs.get("baseline")]
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
