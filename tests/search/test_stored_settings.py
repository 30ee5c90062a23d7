"""Settings and parameters read back from a study are checked as the flags are: a study out of
range, or recorded in another search space, or of several objectives, is refused in one line
before any trial runs, and nothing is written."""

from __future__ import annotations

from pathlib import Path

import optuna
import pytest

from search.errors import UsageError
from search.study import StudySettings
from tests.helpers import assert_one_line_error, run_cli


def made_study(cwd: Path, name: str, **settings: object) -> str:
    """A study as search.run stores one, with `settings` over its defaults."""
    (cwd / "studies").mkdir(exist_ok=True)
    url = f"sqlite:///{cwd}/studies/{name}.db"
    study = optuna.create_study(study_name=name, storage=url, direction="maximize")
    for key, value in (StudySettings().resolved().to_user_attrs() | settings).items():
        study.set_user_attr(key, value)
    return url


@pytest.mark.parametrize(
    ("setting", "value", "needle"),
    [
        ("epochs", 0, "--epochs must be 1 to 1,000"),
        ("epochs", -3, "--epochs must be 1 to 1,000"),
        ("trial_nets", 0, "--trial-nets must be 1 to 10 nets"),
        ("trial_nets", 50, "--trial-nets must be 1 to 10 nets"),
        ("val_pairs", 0, "--val-pairs must be 1 to 30,000 pairs"),
        ("finalists", -1, "--finalists must be 0 to 50"),
        ("race_seeds", 0, "--race-seeds must be 1 to 100"),
        ("seed", -1, "--seed must be an integer from 0 to 4294967295"),
        ("epochs", True, "malformed epochs setting"),
    ],
)
def test_a_stored_setting_out_of_range_is_refused_as_the_flag_would_be(
    setting: str, value: object, needle: str
) -> None:
    attrs = StudySettings().resolved().to_user_attrs() | {setting: value}
    with pytest.raises(UsageError, match="study 'bad'") as e:
        StudySettings.from_user_attrs(attrs, study="bad")
    assert needle in str(e.value)


@pytest.mark.parametrize(
    ("setting", "value", "needle"),
    [("epochs", 0, "--epochs must be 1 to 1,000"), ("epochs", True, "malformed epochs")],
)
def test_both_commands_refuse_a_stored_setting_before_anything_runs(
    setting: str, value: object, needle: str, tmp_path: Path
) -> None:
    url = made_study(tmp_path, "bad", **{setting: value})
    for command in (["search.run", "--trials", "2", "--workers", "1"], ["search.final_eval"]):
        r = run_cli(*command, "--study", "bad", cwd=tmp_path)
        assert_one_line_error(r, "study 'bad'", needle)
    assert optuna.load_study(study_name="bad", storage=url).trials == []


def test_a_study_of_another_search_space_is_refused_before_any_trial(tmp_path: Path) -> None:
    url = made_study(tmp_path, "other")
    study = optuna.load_study(study_name="other", storage=url)
    trial = study.ask()
    trial.suggest_float("family", 0.0, 1.0)  # a float where this space has a choice
    study.tell(trial, 0.5)
    r = run_cli("search.run", "--trials", "3", "--workers", "1", "--study", "other", cwd=tmp_path)
    assert_one_line_error(r, "does not fit this search space", "'family'")
    assert len(optuna.load_study(study_name="other", storage=url).trials) == 1


def test_final_eval_of_a_study_with_several_objectives(tmp_path: Path) -> None:
    (tmp_path / "studies").mkdir()
    url = f"sqlite:///{tmp_path}/studies/multi.db"
    study = optuna.create_study(study_name="multi", storage=url, directions=["maximize"] * 2)
    study.set_user_attr("epochs", 20)
    trial = study.ask()
    trial.suggest_categorical("family", ["siamese"])
    study.tell(trial, [0.5, 0.6])
    r = run_cli("search.final_eval", "--study", "multi", cwd=tmp_path)
    assert_one_line_error(r, "is not a digit-pair study", "maximize, maximize")
