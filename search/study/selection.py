"""Which trial a final evaluation takes, and its configuration rebuilt by the search space."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from models import Config
from search.errors import UsageError
from search.study.racing import Race, race_of, search_trials
from search.study.space import suggest_config


def best_search_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    complete = [t for t in search_trials(trials) if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: (t.value or 0.0, -t.number), default=None)


def pick_trial(study: optuna.Study, number: int | None) -> tuple[FrozenTrial, str]:
    """Trial `number`, else the raced winner, else the search's best; and why, in words."""
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
        return trial, f"trial #{number}, as asked"
    best = best_search_trial(trials)
    if best is None:
        raise UsageError(
            f"study {study.study_name!r} has no completed trial yet; run python -m search.run"
        )
    race = race_of(study, trials)
    if race is None:
        return best, f"trial #{best.number}, the search's best validation value (no race)"
    if not race.complete or race.winner is None:
        return best, (
            f"trial #{best.number}, the search's best validation value: its race is not "
            "finished (run search.run again to finish it)"
        )
    w = race.winner
    return trials[w.trial], f"trial #{w.trial}, the raced winner: {describe(race)}"


def describe(race: Race) -> str:
    """The race in one line: each finalist's mean validation value over the race seeds."""
    parts = [
        f"#{s.trial}{' (default)' if s.default else ''} {100 * s.mean:.2f}" for s in race.ranked()
    ]
    seeds = max((len(s.values) for s in race.standings), default=0)
    return f"mean validation % over {seeds} race seeds: " + ", ".join(parts)


def replay(trial: FrozenTrial, *, epochs: int) -> Config:
    """The trial's config, rebuilt by the search space itself."""
    try:
        return suggest_config(trial, epochs=epochs)
    except (ValueError, KeyError) as e:
        raise UsageError(
            f"trial {trial.number} does not fit this search space ({e}); "
            "was the study made by search.run?"
        ) from None
