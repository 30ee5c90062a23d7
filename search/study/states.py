"""Trial states that count towards a study's totals."""

from __future__ import annotations

from optuna.trial import TrialState

FINISHED = (TrialState.COMPLETE, TrialState.PRUNED)  # count towards --trials
TAKEN = (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING)  # nobody else may take
