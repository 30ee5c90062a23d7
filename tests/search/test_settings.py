from __future__ import annotations

from dataclasses import fields

import pytest

from models import Config
from search.errors import UsageError
from search.run import build_parser, given_settings
from search.study import StudySettings, settle


def test_the_defaults_are_configs() -> None:
    assert StudySettings().epochs == Config().epochs == 20
    assert Config().augment is True  # every searched configuration is augmented


def test_settings_round_trip_through_user_attrs() -> None:
    s = StudySettings(dataset="mnist", data_dir="/data", seed=3, epochs=7, val_pairs=400)
    assert StudySettings.from_user_attrs(s.to_user_attrs(), study="x") == s.resolved()
    assert s.resolved().trial_epochs == 7
    two = StudySettings(epochs=7, trial_nets=2)
    assert StudySettings.from_user_attrs(two.to_user_attrs(), study="x").trial_epochs == 4


def test_a_setting_a_study_lacks_takes_its_default() -> None:
    assert StudySettings.from_user_attrs({"epochs": 5}, study="x") == StudySettings(
        epochs=5, trial_epochs=5
    )


def test_a_trial_is_one_net_of_the_epochs_or_several_nets_of_fewer_unless_told() -> None:
    s = settle({}, None, study="x")
    assert (s.epochs, s.trial_nets, s.trial_epochs) == (20, 1, 20)
    two = settle({"trial_nets": 2}, None, study="x")
    assert (two.trial_nets, two.trial_budget) == (2, 12)
    assert settle({"trial_nets": 3, "trial_epochs": 7}, None, study="x").trial_budget == 7
    with pytest.raises(UsageError, match="created with --trial-nets 2, not 1"):
        settle({"trial_nets": 1}, two, study="x")


def test_a_malformed_stored_setting_is_one_line() -> None:
    with pytest.raises(UsageError, match="malformed epochs setting"):
        StudySettings.from_user_attrs({"epochs": "twenty"}, study="x")


def test_a_new_study_takes_the_given_flags_over_the_defaults() -> None:
    s = settle({"epochs": 4, "seed": None, "dataset": None}, None, study="x")
    assert s == StudySettings(epochs=4, trial_epochs=4)


def test_a_rerun_keeps_the_stored_settings_and_refuses_a_conflicting_flag() -> None:
    stored = StudySettings(epochs=4, seed=2, val_pairs=500)
    assert settle({"epochs": None, "seed": 2}, stored, study="x") == stored
    with pytest.raises(UsageError, match="created with --epochs 4, not 5"):
        settle({"epochs": 5}, stored, study="x")
    with pytest.raises(UsageError, match="--val-pairs 500, not 50"):
        settle({"val_pairs": 50}, stored, study="x")


def test_a_rerun_may_name_another_data_dir() -> None:
    stored = StudySettings(dataset="mnist", data_dir="/old")
    assert settle({"data_dir": "/new"}, stored, study="x").data_dir == "/new"


def test_every_setting_is_a_flag_of_search_run_given_as_none_when_left_out() -> None:
    args = build_parser().parse_args([])
    given = given_settings(args)
    assert set(given) == {f.name for f in fields(StudySettings)}
    assert all(value is None for value in given.values())  # a re-run keeps the study's
    args = build_parser().parse_args(["--cold-start", "--epochs", "3", "--data-dir", "d"])
    assert given_settings(args) == dict(given, cold_start=True, epochs=3, data_dir="d")


def test_a_stored_flag_setting_is_checked_like_the_others() -> None:
    stored = StudySettings(cold_start=True)
    assert settle({"cold_start": None}, stored, study="x") == stored
    with pytest.raises(UsageError, match="created without --cold-start"):
        settle({"cold_start": True}, StudySettings(), study="x")
    with pytest.raises(UsageError, match="malformed cold_start setting"):
        StudySettings.from_user_attrs({"cold_start": "yes"}, study="x")
