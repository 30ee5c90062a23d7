"""Which trial a final evaluation takes, and its configuration rebuilt by the search space."""

from __future__ import annotations

import optuna
from optuna.trial import FrozenTrial, TrialState

from models import Config
from search.errors import UsageError
from search.space import suggest_config


def pick_trial(study: optuna.Study, number: int | None) -> FrozenTrial:
    """Trial `number`, or the study's best when None."""
    trials = study.get_trials(deepcopy=False)
    if number is not None:
        if number >= len(trials):
            raise UsageError(
                f"trial {number} does not exist in study {study.study_name!r} "
                f"(trials 0-{len(trials) - 1}); pick one with optuna trials or the dashboard"
            )
        trial = trials[number]
        if trial.state not in (TrialState.COMPLETE, TrialState.PRUNED):
            raise UsageError(f"trial {number} is {trial.state.name}; choose a finished trial")
        return trial
    if not any(t.state == TrialState.COMPLETE for t in trials):
        raise UsageError(
            f"study {study.study_name!r} has no completed trial yet; run python -m search.run"
        )
    return study.best_trial


def replay(trial: FrozenTrial, *, epochs: int) -> Config:
    """The trial's config, rebuilt by the search space itself."""
    try:
        return suggest_config(trial, epochs=epochs)
    except (ValueError, KeyError) as e:
        raise UsageError(
            f"trial {trial.number} does not fit this search space ({e}); "
            "was the study made by search.run?"
        ) from None
