"""The study: what it fixes (settings), the search space, a trial's value, the samplers and
pruners, the race of finalists and the selection. It knows nothing of processes or of how a
storage is opened."""

from search.study.budget import (
    CONSTRAINT,
    OVER_BUDGET,
    Yardstick,
    baseline_configs,
    narrowest,
    shrunk,
    smallest_params,
    yardstick,
)
from search.study.objective import Objective, SearchData, WorkerStopped, trial_seed
from search.study.racing import (
    RACE_AFTER,
    RACE_OF,
    RACE_SEED,
    REUSED_FROM,
    Plan,
    Race,
    Standing,
    Step,
    finalists,
    intensify,
    is_race,
    race_of,
    race_seed,
    race_trials,
    yardstick_params,
)
from search.study.selection import best_search_trial, pick_trial, replay
from search.study.settings import DEFAULT_STUDY, TRIAL_EPOCH_SHARE, StudySettings, settle
from search.study.space import (
    baseline_params,
    foreign_parameter,
    recorded_params,
    suggest_config,
)
from search.study.states import FINISHED
from search.study.strategies import (
    DEFAULT_PRUNER,
    PRUNERS,
    SAMPLERS,
    make_pruner,
    make_sampler,
    warmup_epochs,
)
from search.study.tradeoff import NEAR_BEST, Point, front, over_budget, points, smallest_near_best

__all__ = [
    "CONSTRAINT",
    "DEFAULT_PRUNER",
    "DEFAULT_STUDY",
    "FINISHED",
    "NEAR_BEST",
    "OVER_BUDGET",
    "PRUNERS",
    "RACE_AFTER",
    "RACE_OF",
    "RACE_SEED",
    "REUSED_FROM",
    "SAMPLERS",
    "TRIAL_EPOCH_SHARE",
    "Objective",
    "Plan",
    "Point",
    "Race",
    "SearchData",
    "Standing",
    "Step",
    "StudySettings",
    "WorkerStopped",
    "Yardstick",
    "baseline_configs",
    "baseline_params",
    "best_search_trial",
    "finalists",
    "foreign_parameter",
    "front",
    "intensify",
    "is_race",
    "make_pruner",
    "make_sampler",
    "narrowest",
    "over_budget",
    "pick_trial",
    "points",
    "race_of",
    "race_seed",
    "race_trials",
    "recorded_params",
    "replay",
    "settle",
    "shrunk",
    "smallest_near_best",
    "smallest_params",
    "suggest_config",
    "trial_seed",
    "warmup_epochs",
    "yardstick",
    "yardstick_params",
]
