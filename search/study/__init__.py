"""The study: what it fixes (settings), the search space, a trial's value, the samplers and
pruners, the race of finalists and the selection. It knows nothing of processes or of how a
storage is opened."""

from search.study.objective import Objective, SearchData, WorkerStopped, trial_seed
from search.study.racing import (
    RACE_AFTER,
    RACE_OF,
    RACE_SEED,
    Plan,
    Race,
    Standing,
    Step,
    finalists,
    intensify,
    is_race,
    race_of,
    race_seed,
)
from search.study.selection import best_search_trial, pick_trial, replay
from search.study.settings import DEFAULT_STUDY, TRIAL_EPOCH_SHARE, StudySettings, settle
from search.study.space import baseline_params, baselines, suggest_config
from search.study.states import FINISHED
from search.study.strategies import (
    DEFAULT_PRUNER,
    PRUNERS,
    SAMPLERS,
    make_pruner,
    make_sampler,
    warmup_epochs,
)

__all__ = [
    "DEFAULT_PRUNER",
    "DEFAULT_STUDY",
    "FINISHED",
    "PRUNERS",
    "RACE_AFTER",
    "RACE_OF",
    "RACE_SEED",
    "SAMPLERS",
    "TRIAL_EPOCH_SHARE",
    "Objective",
    "Plan",
    "Race",
    "SearchData",
    "Standing",
    "Step",
    "StudySettings",
    "WorkerStopped",
    "baseline_params",
    "baselines",
    "best_search_trial",
    "finalists",
    "intensify",
    "is_race",
    "make_pruner",
    "make_sampler",
    "pick_trial",
    "race_of",
    "race_seed",
    "replay",
    "settle",
    "suggest_config",
    "trial_seed",
    "warmup_epochs",
]
