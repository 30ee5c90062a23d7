from __future__ import annotations

import numpy as np
import optuna
import pytest

from search.study import make_pruner
from search.study.strategies import warmup_epochs


@pytest.mark.parametrize(
    ("name", "optunas_class"),
    [("percentile", optuna.pruners.PercentilePruner), ("median", optuna.pruners.MedianPruner)],
)
def test_the_pruner_decides_as_optunas(name: str, optunas_class: type) -> None:
    """Every decision, epoch by epoch, across start-up, warm-up and after, is Optuna's."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = make_pruner(name, epochs=20)
    settings = {"n_startup_trials": 5, "n_warmup_steps": warmup_epochs(20)}
    optunas = optunas_class(25.0, **settings) if name == "percentile" else optunas_class(**settings)
    rng = np.random.default_rng(0)
    storage = optuna.storages.InMemoryStorage()
    study = optuna.create_study(direction="maximize", storage=storage)
    study_id = storage.get_study_id_from_name(study.study_name)
    decisions = []
    for _ in range(12):
        trial = study.ask()
        curve = np.cumsum(rng.uniform(0.0, 0.1, size=8))
        for step, value in enumerate(curve, start=1):
            trial.report(float(value), step)
            trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
            frozen = storage.get_trial(trial_id)
            decisions.append(ours.prune(study, frozen))
            assert decisions[-1] == optunas.prune(study, frozen)
        study.tell(trial, float(curve[-1]))
    assert any(decisions) and not all(decisions)  # both kinds of decision were compared


def test_the_pruner_reads_the_completed_trials_once_per_trial() -> None:
    """Trials that complete while a trial runs count for the next trial, not for it: the
    completed trials are read at a trial's first epoch past the warm-up."""
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    ours = make_pruner("percentile", epochs=20)
    optunas = optuna.pruners.PercentilePruner(
        25.0, n_startup_trials=5, n_warmup_steps=warmup_epochs(20)
    )
    study = optuna.create_study(direction="maximize")
    first_check = warmup_epochs(20)

    def completed(value: float) -> None:
        trial = study.ask()
        for step in range(1, 21):
            trial.report(value, step)
        study.tell(trial, value)

    def report(trial: optuna.Trial, value: float, step: int) -> optuna.trial.FrozenTrial:
        trial.report(value, step)
        return study.get_trials(deepcopy=False)[trial.number]

    for _ in range(5):
        completed(0.5)
    running = study.ask()
    for step in range(1, first_check + 1):
        frozen = report(running, 0.6, step)
    assert not ours.prune(study, frozen) and not optunas.prune(study, frozen)
    for _ in range(10):  # better trials complete meanwhile
        completed(0.9)
    frozen = report(running, 0.6, first_check + 1)
    assert optunas.prune(study, frozen)  # Optuna reads them at once
    assert not ours.prune(study, frozen)  # the running trial keeps its view
    new = study.ask()
    for step in range(1, first_check + 1):
        frozen = report(new, 0.6, step)
    assert ours.prune(study, frozen)  # the next trial sees them
