"""The study: what it fixes (settings), the search space, a trial's value, the samplers and
pruners, the race of finalists and the selection. It knows nothing of processes or of how a
storage is opened."""

from search.study.budget import baseline_configs, narrowest, shrunk, smallest_params, yardstick
from search.study.objective import Objective, SearchData, WorkerStopped
from search.study.racing import RACE_AFTER, Plan, Race, Step, is_race, race_of
from search.study.selection import best_search_trial, pick_trial, replay
from search.study.settings import (
    DEFAULT_STUDY,
    NO_BUDGET,
    RANGES,
    TRIAL_EPOCH_SHARE,
    StudySettings,
    check_direction,
    settle,
)
from search.study.space import STRUCTURE, foreign_parameter, recorded_params
from search.study.strategies import (
    COLD_RANDOM_SHARE,
    DEFAULT_PRUNER,
    DEFAULT_RANDOM_DRAWS,
    KEEP_SHARE,
    PRUNERS,
    RANDOM_DRAWS,
    SAMPLERS,
    SPARING_PRUNERS,
    WARMUP_SHARE,
    make_pruner,
    make_sampler,
    random_share,
    share_refused,
    spares_draws,
    sparing_refused,
)
from search.study.tradeoff import NEAR_BEST, Point, front, over_budget, points, smallest_near_best

__all__ = [
    "COLD_RANDOM_SHARE",
    "DEFAULT_PRUNER",
    "DEFAULT_RANDOM_DRAWS",
    "DEFAULT_STUDY",
    "KEEP_SHARE",
    "NEAR_BEST",
    "NO_BUDGET",
    "PRUNERS",
    "RACE_AFTER",
    "RANDOM_DRAWS",
    "RANGES",
    "SAMPLERS",
    "SPARING_PRUNERS",
    "STRUCTURE",
    "TRIAL_EPOCH_SHARE",
    "WARMUP_SHARE",
    "Objective",
    "Plan",
    "Point",
    "Race",
    "SearchData",
    "Step",
    "StudySettings",
    "WorkerStopped",
    "baseline_configs",
    "best_search_trial",
    "check_direction",
    "foreign_parameter",
    "front",
    "is_race",
    "make_pruner",
    "make_sampler",
    "narrowest",
    "over_budget",
    "pick_trial",
    "points",
    "race_of",
    "random_share",
    "recorded_params",
    "replay",
    "settle",
    "share_refused",
    "shrunk",
    "smallest_near_best",
    "smallest_params",
    "spares_draws",
    "sparing_refused",
    "yardstick",
]
