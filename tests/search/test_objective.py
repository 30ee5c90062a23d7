from __future__ import annotations

import optuna
import pytest
import torch

from data import Source
from models import Config
from search.study import Objective, SearchData, StudySettings
from search.study.racing import RACE_SEED, race_seed
from search.study.space import family_default_params, suggest_config

PARAMS = {
    "family": "siamese",
    "nb_filters": 8,
    "conv_layers": 2,
    "kernel_size": 3,
    "hidden_units": 32,
    "dropout": 0.1,
    "batch_norm": True,
    "weight_sharing": True,
    "head": "digits",
    "alpha": 0.5,
    "lr": 3e-3,
    "batch_size": 32,
    "weight_decay": 1e-4,
}


def family_params(family: str) -> dict[str, object]:
    params = dict(PARAMS, family=family)
    if family != "siamese":
        params.pop("weight_sharing")
    if family == "mlp":
        for name in ("nb_filters", "conv_layers", "kernel_size"):
            params.pop(name)
    return params


@pytest.fixture(scope="module")
def small_objective(mnist5k: Source) -> Objective:
    settings = StudySettings(epochs=2, train_pairs=200, val_pairs=100)
    return Objective(SearchData.of(mnist5k, settings), device=torch.device("cpu"), threads=1)


@pytest.mark.parametrize("family", ["mlp", "cnn", "siamese"])
def test_objective_under_fixed_trial(family: str, small_objective: Objective) -> None:
    trial = optuna.trial.FixedTrial(family_params(family), number=3)
    value = small_objective(trial)
    assert 0.0 <= value <= 1.0
    attrs = trial.user_attrs
    assert attrs["seed"] == 3 and attrs["n_params"] > 0
    assert attrs["seconds_per_epoch"] > 0 and 0.0 <= attrs["train_accuracy"] <= 1.0
    # A siamese net comparing its digit predictions is scored over all ordered pairs of the
    # validation images; the others over the validation pairs, which are kept either way.
    assert attrs["value_over"] == ("all pairs" if family == "siamese" else "pairs")
    assert (value == attrs["val_pairs_accuracy"]) == (family != "siamese")


def test_objective_refuses_test_pairs(mnist5k: Source) -> None:
    with pytest.raises(ValueError, match="test pairs"):
        SearchData(mnist5k, StudySettings())  # a source that still has its test pool
    data = SearchData.of(mnist5k, StudySettings())
    assert len(data.source.test_images) == 0 and len(data.source.train_images) == 3000
    assert data.splits().test is None and data.splits(seed=123).test is None


def test_a_race_trial_trains_on_its_race_seed_without_pruning(small_objective: Objective) -> None:
    values = []
    for number in (3, 4):  # two finalists on race seed 1: the same split and training seed
        trial = optuna.trial.FixedTrial(family_params("siamese"), number=number)
        trial.set_user_attr(RACE_SEED, 1)
        values.append(small_objective(trial))
        assert trial.user_attrs["seed"] == race_seed(0, 1)
    assert values[0] == values[1]  # same configuration, same seed: the same run
    assert race_seed(0, 1) in small_objective.data.drawn  # the race seed's own split


def test_a_diverging_trial_is_pruned_with_its_reason(small_objective: Objective) -> None:
    params = dict(family_params("mlp"), lr=1e12, batch_norm=False, head="learned")
    trial = optuna.trial.FixedTrial(params)
    with pytest.raises(optuna.TrialPruned, match="diverged"):
        small_objective(trial)
    assert "loss became" in trial.user_attrs["diverged"]


def test_space_replays_on_a_stored_trial() -> None:
    study = optuna.create_study(sampler=optuna.samplers.RandomSampler(seed=1))
    configs = []
    study.optimize(lambda t: configs.append(suggest_config(t, epochs=7)) or 0.0, n_trials=20)
    for config, frozen in zip(configs, study.trials, strict=True):
        assert suggest_config(frozen, epochs=7) == config
    assert {c.family for c in configs} == {"mlp", "cnn", "siamese"}


@pytest.mark.parametrize("family", ["mlp", "cnn", "siamese"])
def test_baselines_replay_to_the_family_defaults(family: str) -> None:
    params = family_default_params(family)
    assert params["family"] == family
    expected = Config(family=family, epochs=7, weight_sharing=family == "siamese", augment=True)
    assert suggest_config(optuna.trial.FixedTrial(params), epochs=7) == expected


def test_a_trial_is_scored_as_the_ensemble_of_its_nets_one_value_an_epoch(mnist5k: Source) -> None:
    def run(nets: int) -> optuna.trial.FrozenTrial:
        settings = StudySettings(
            epochs=5, trial_nets=nets, trial_epochs=2, train_pairs=200, val_pairs=100
        )
        objective = Objective(
            SearchData.of(mnist5k, settings),
            device=torch.device("cpu"),
            threads=1,
        )
        study = optuna.create_study(direction="maximize")
        study.enqueue_trial(family_params("siamese"))
        study.optimize(objective, n_trials=1)
        return study.trials[0]

    one, two = run(1), run(2)
    for trial in (one, two):  # trial_epochs epochs, not the final evaluation's --epochs
        assert sorted(trial.intermediate_values) == [1, 2]
        assert trial.value == trial.intermediate_values[2]
    assert one.user_attrs["n_params"] == two.user_attrs["n_params"]  # of one net
    # The first of two nets is the single net itself (the trial's seed): the ensemble's score
    # is another, and the value moves from one net's to the pair's.
    assert two.value != one.value
