"""The progress bar of a search: finished trials of the study's total, and the best value."""

from __future__ import annotations

import optuna
from tqdm import tqdm

from search.storage import STORAGE_ERRORS
from search.study import Plan, is_race


def progress_bar(study: optuna.Study, plan: Plan) -> tqdm:
    finished, total = plan.progress(study.get_trials(deepcopy=False))
    return tqdm(total=total, initial=finished, unit="trial")


def show_progress(bar: tqdm, study: optuna.Study, plan: Plan, *, best: bool = False) -> None:
    """Redraw the bar from the study: the search's trials, then the race's. While the storage
    cannot be read (a database restart) the bar stays as it is: the trials' own storage calls
    retry, and say so if they give up. `best` is the best search value so far."""
    try:
        trials = study.get_trials(deepcopy=False)  # one read for all
    except STORAGE_ERRORS:
        return
    bar.n, bar.total = plan.progress(trials)
    values = [
        t.value
        for t in trials
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None and not is_race(t)
    ]
    if best and values:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        bar.set_postfix(best=f"{pick(values):.4f}")
    bar.refresh()
