"""The progress bar of a search: finished trials of the study's total, and the best value."""

from __future__ import annotations

import optuna
from tqdm import tqdm

from search.retries import STORAGE_ERRORS
from search.trials import FINISHED, count


def progress_bar(study: optuna.Study, total: int) -> tqdm:
    return tqdm(total=total, initial=count(study, FINISHED), unit="trial")


def show_progress(bar: tqdm, study: optuna.Study, *, best: bool = False) -> None:
    """Redraw the bar from the study. While the storage cannot be read (a database restart) the
    bar stays as it is: the trials' own storage calls retry, and say so if they give up."""
    try:
        finished = study.get_trials(deepcopy=False, states=FINISHED)  # one read for both
    except STORAGE_ERRORS:
        return
    bar.n = min(len(finished), bar.total)
    values = [
        t.value
        for t in finished
        if t.state == optuna.trial.TrialState.COMPLETE and t.value is not None
    ]
    if best and values:
        pick = max if study.direction == optuna.study.StudyDirection.MAXIMIZE else min
        bar.set_postfix(best=f"{pick(values):.4f}")
    bar.refresh()
