"""What `python -m search.run` was asked to do."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from search.storage import StorageChoice
from search.study import Strategy


@dataclass(frozen=True)
class RunRequest:
    """What `python -m search.run` was asked to do, its flags resolved."""

    study: str
    storage: StorageChoice
    given: Mapping[str, Any]  # study-settings flags as given (None: not given)
    trials: int  # the study's target total of finished trials
    device: str
    threads: int
    heartbeat: int
    timeout: float | None
    create_only: bool = False
    queue_defaults: bool = True  # each family's default queued first (a warm study)
    strategy: Strategy = field(default_factory=Strategy)  # sampler, pruner, draws at random
