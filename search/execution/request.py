"""What `python -m search.run` was asked to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from search.storage import StorageChoice
from search.study import DEFAULT_RANDOM_DRAWS


@dataclass(frozen=True)
class RunRequest:
    """What `python -m search.run` was asked to do, its flags resolved."""

    study: str
    storage: StorageChoice
    given: Mapping[str, Any]  # study-settings flags as given (None: not given)
    trials: int  # the study's target total of finished trials
    sampler: str
    pruner: str
    device: str
    threads: int
    heartbeat: int
    timeout: float | None
    create_only: bool = False
    baselines: bool = True
    # of the search trials, drawn at random (make_sampler); None: by the study (random_share)
    random_share: float | None = None
    # what a draw at random draws: the whole configuration, or its structure only (make_sampler)
    random_draws: str = DEFAULT_RANDOM_DRAWS
    # a trial drawn at random is never pruned (make_pruner); None: where the pruner can spare
    # it (spares_draws)
    spare_random_draws: bool | None = None
