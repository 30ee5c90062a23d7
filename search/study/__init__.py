"""The study: what it fixes (settings), the search space, a trial's value, the search strategy
(samplers and pruners), the race of finalists and the selection. It knows nothing of processes
or of how a storage is opened."""

from search.study.budget import (
    default_in_budget,
    fitted,
    queued_defaults,
    smallest_params,
)
from search.study.objective import Objective, SearchData, WorkerStopped
from search.study.racing import RACE_AFTER, Plan, Race, Step, is_race, race_of
from search.study.selection import best_search_trial, pick_trial, replay
from search.study.settings import StudySettings, check_direction, settle
from search.study.space import foreign_parameter, recorded_params
from search.study.strategies import Strategy
from search.study.tradeoff import Point, Tradeoff

__all__ = [
    "RACE_AFTER",
    "Objective",
    "Plan",
    "Point",
    "Race",
    "SearchData",
    "Step",
    "Strategy",
    "StudySettings",
    "Tradeoff",
    "WorkerStopped",
    "best_search_trial",
    "check_direction",
    "default_in_budget",
    "fitted",
    "foreign_parameter",
    "is_race",
    "pick_trial",
    "queued_defaults",
    "race_of",
    "recorded_params",
    "replay",
    "settle",
    "smallest_params",
]
