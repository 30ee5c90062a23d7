"""Which trial a final evaluation takes, and its configuration rebuilt by the search space."""

from __future__ import annotations

from collections.abc import Sequence

import optuna
from optuna.trial import FrozenTrial, TrialState

from models import Config
from search.errors import UsageError
from search.study.racing import Race, is_race, race_of, search_trials
from search.study.settings import StudySettings
from search.study.space import suggest_config


def best_search_trial(trials: Sequence[FrozenTrial]) -> FrozenTrial | None:
    complete = [t for t in search_trials(trials) if t.state == TrialState.COMPLETE]
    return max(complete, key=lambda t: (t.value or 0.0, -t.number), default=None)


def pick_trial(study: optuna.Study, number: int | None) -> tuple[FrozenTrial, str]:
    """Trial `number`, else the race's selection, else the search's best; and why, in words."""
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
    unfinished(study, trials)
    race = race_of(study, trials)
    if race is None:
        return best, f"trial #{best.number}, the search's best validation value (no race)"
    if race.selection is None:
        raise UsageError(
            f"the race of study {study.study_name!r} has no finished run; run search.run again "
            f"to finish it, or evaluate a chosen trial with --trial N"
        )
    w = race.selection
    return trials[w.trial], f"trial #{w.trial}, the race's selection: {describe(race)}"


ANYWAY = " (the search's best so far is trial #{best})"


def unfinished(study: optuna.Study, trials: Sequence[FrozenTrial]) -> None:
    """Refuses to pick a selection from a study of search.run whose plan is not done: trials
    still running (a search or race in progress, or one killed and not yet resumed), race
    trials waiting, or finalists that were never raced (the search stopped before its total).
    Search trials left waiting are not a sign: a run queues the default of each family and may end
    before it takes them all. The user can still evaluate a trial of their choice (--trial)."""
    name = study.study_name
    best = best_search_trial(trials)
    anyway = ANYWAY.format(best=best.number) if best is not None else ""
    running = sum(t.state == TrialState.RUNNING for t in trials)
    waiting = sum(t.state == TrialState.WAITING and is_race(t) for t in trials)
    if running or waiting:
        raise UsageError(
            f"study {name!r} is not finished ({running} trial(s) running, {waiting} race "
            "trial(s) waiting): let search.run end, or run it again if it was stopped, then "
            f"evaluate; or evaluate a chosen trial now with --trial N{anyway}"
        )
    if "finalists" not in study.user_attrs:  # not a study of search.run: nothing planned
        return
    settings = StudySettings.from_user_attrs(study.user_attrs, study=name)
    if settings.finalists > 0 and race_of(study, trials) is None:
        raise UsageError(
            f"study {name!r} has not raced its finalists yet (its search stopped before its "
            f"total): run search.run again to finish it, or evaluate a chosen trial with "
            f"--trial N{anyway}"
        )


def describe(race: Race) -> str:
    """The race in one line: each finalist's mean validation value over the race seeds."""
    parts = [
        f"#{s.trial}{' (default)' if s.is_default else ''} {100 * s.mean:.2f}"
        for s in race.ranked()
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
