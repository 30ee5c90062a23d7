"""Samplers and pruners by name."""

from __future__ import annotations

import warnings
from collections.abc import Container
from typing import cast

import optuna
from optuna.trial import FrozenTrial, TrialState

SAMPLERS = ("tpe", "random", "qmc", "gp")
PRUNERS = ("percentile", "median", "hyperband", "none")
DEFAULT_PRUNER = "percentile"


def make_sampler(name: str, *, seed: int, parallel: bool) -> optuna.samplers.BaseSampler:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        if name == "tpe":
            # group=True lets the multivariate TPE model the conditional (per-family) parameters;
            # constant_liar keeps parallel workers from sampling the same point.
            return optuna.samplers.TPESampler(
                multivariate=True, group=True, constant_liar=parallel, seed=seed
            )
        if name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        if name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        if name == "gp":
            return optuna.samplers.GPSampler(seed=seed)
    raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")


class WarmupFirstPercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's PercentilePruner (MedianPruner is its 50th percentile), which reads all completed
    trials at every epoch, before it looks at the warm-up. This one answers the warm-up epochs
    without that read, and reads the completed trials once per trial, at its first epoch past
    the warm-up: on a study of thousands of trials on PostgreSQL each read is a round of
    queries and a sort of the whole history (benchmarks/scale.py). One worker: Optuna's
    decisions exactly. Several: a trial that completes while another runs counts for the
    next one."""

    def __init__(self, percentile: float, *, n_startup_trials: int, n_warmup_steps: int) -> None:
        super().__init__(
            percentile, n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
        self.warmup = n_warmup_steps
        self.snapshot: tuple[tuple[str, int], _Completed] | None = None  # a trial's view

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step is None or trial.last_step < self.warmup:
            return False
        key = (study.study_name, trial.number)
        if self.snapshot is None or self.snapshot[0] != key:
            self.snapshot = (key, _Completed(study))
        return super().prune(cast(optuna.Study, self.snapshot[1]), trial)


class _Completed:
    """What PercentilePruner.prune reads of a study (its direction and its completed trials),
    read once."""

    def __init__(self, study: optuna.Study) -> None:
        self.direction = study.direction
        self.completed = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))

    def get_trials(
        self, deepcopy: bool = False, states: Container[TrialState] | None = None
    ) -> list[FrozenTrial]:
        assert states == (TrialState.COMPLETE,), "PercentilePruner reads completed trials only"
        return self.completed


# The share of a trial's epochs every trial trains before it may be pruned, and the share of
# the completed trials a trial must stay among after it (percentile pruner; median: half).
# Chosen by benchmarks/pruning.py; its figures are in docs/performance.md.
WARMUP_SHARE = 0.15
KEEP_SHARE = 0.25


def warmup_epochs(epochs: int) -> int:
    """WARMUP_SHARE of the epochs, at least one."""
    return max(1, round(WARMUP_SHARE * epochs))


def make_pruner(name: str, *, epochs: int) -> optuna.pruners.BasePruner:
    if name in ("percentile", "median"):
        # After the warm-up, a trial goes on only while it is among the best KEEP_SHARE
        # (percentile) or half (median) of the completed trials at that epoch.
        percentile = 100 * KEEP_SHARE if name == "percentile" else 50.0
        return WarmupFirstPercentilePruner(
            percentile, n_startup_trials=5, n_warmup_steps=warmup_epochs(epochs)
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")
