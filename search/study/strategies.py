"""How a run searches: samplers and pruners by name, the share of trials drawn at random, and
the one Strategy type that holds a run's choices, their defaults and what they refuse."""

from __future__ import annotations

import warnings
from collections.abc import Collection, Container, Sequence
from dataclasses import dataclass, replace
from typing import Any, ClassVar, cast

import numpy as np
import optuna
from optuna.distributions import BaseDistribution
from optuna.trial import FrozenTrial, TrialState

from search.study.space import STRUCTURE

SAMPLERS = ("tpe", "random", "qmc", "gp")
PRUNERS = ("percentile", "median", "hyperband", "none")
RANDOM_DRAWS = ("whole", "structure")  # what a draw at random draws (--random-draws)
DEFAULT_RANDOM_DRAWS = "structure"
DEFAULT_PRUNER = "percentile"


def make_sampler(
    name: str,
    *,
    seed: int,
    parallel: bool,
    trials: int = 0,
    random_share: float = 0.0,
    structure: Collection[str] | None = None,
) -> optuna.samplers.BaseSampler:
    """Sampler `name`. With a `random_share` (TPE and GP), that share of a search of `trials`
    is drawn at random: its first trials (at least Optuna's 10) and, after them, each trial
    with that probability (Explore). With `structure` (parameter names), a draw at random
    draws only those at random after the first 10 trials, and the model the rest."""
    drawn = max(DEFAULT_STARTUP, round(random_share * trials))
    startup = DEFAULT_STARTUP if structure is not None else drawn
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
        model: optuna.samplers.BaseSampler
        if name == "tpe":
            # group=True lets the multivariate TPE model the conditional (per-family) parameters;
            # constant_liar keeps parallel workers from sampling the same point.
            model = optuna.samplers.TPESampler(
                multivariate=True,
                group=True,
                constant_liar=parallel,
                seed=seed,
                n_startup_trials=startup,
            )
        elif name == "gp":
            model = optuna.samplers.GPSampler(seed=seed, n_startup_trials=startup)
        elif name == "random":
            return optuna.samplers.RandomSampler(seed=seed)
        elif name == "qmc":
            return optuna.samplers.QMCSampler(seed=seed, warn_independent_sampling=False)
        else:
            raise ValueError(f"unknown sampler {name!r}; choose one of {', '.join(SAMPLERS)}")
    if random_share <= 0:
        return model
    if structure is None:
        return Explore(model, share=random_share, seed=seed)
    return Explore(model, share=random_share, seed=seed, structure=structure, first=drawn)


DEFAULT_STARTUP = 10  # TPE's and GP's random start-up trials, Optuna's default
# A cold start's share of search trials drawn at random (--random-share's default there). A
# warm study queues the default of each family first, at sound settings, so the model
# meets every family at its best early; a cold start has nothing of the kind, and a model that
# settled on its first draws that trained can write off a whole family for good (a cold search
# sampled 195 MLPs of 200 and selected one, docs/results.md).
COLD_RANDOM_SHARE = 0.2


MODEL_SAMPLERS = ("tpe", "gp")  # the samplers a share of the trials drawn at random applies to


def random_share(given: float | None, *, cold_start: bool, sampler: str) -> float:
    """--random-share as given, else COLD_RANDOM_SHARE for a cold start and 0 (Optuna's 10
    start-up trials alone) for a warm study; 0 for a sampler with no model (random,
    qmc), which draws every trial without one."""
    if sampler not in MODEL_SAMPLERS:
        return 0.0
    if given is not None:
        return given
    return COLD_RANDOM_SHARE if cold_start else 0.0


def share_refused(sampler: str, *, share: float | None) -> str | None:
    """Why `sampler` cannot take a share drawn at random, in one line; None if it can (or is
    given none)."""
    if share and sampler not in MODEL_SAMPLERS:
        return (
            f"--random-share needs --sampler {' or '.join(MODEL_SAMPLERS)}: {sampler} draws "
            "every trial without a model"
        )
    return None


AT_RANDOM = "drawn_at_random"  # the user attribute of a trial Explore drew at random


def mark_drawn_at_random(trial: optuna.trial.BaseTrial) -> None:
    """Record on a live trial that its sampler (an Explore) drew it at random: the user
    attribute AT_RANDOM, shown by the dashboard. A sampler sees only a FrozenTrial, so the
    objective, which holds the live trial, records it; a fixed trial has no sampler."""
    if not isinstance(trial, optuna.Trial):
        return
    sampler = trial.study.sampler
    if isinstance(sampler, Explore) and trial.number in sampler.drawn_at_random:
        trial.set_user_attr(AT_RANDOM, True)


class Explore(optuna.samplers.BaseSampler):
    """A model-based sampler that draws each trial at random instead with probability `share`
    (SMAC interleaves random configurations with probability 0.2, BOHB keeps a third): a
    family or a region the model wrote off early is still tried now and then, so a model that
    settled on the first draws that trained well can still find better ones.

    With `structure` (parameter names), a trial drawn at random draws only those at random and
    takes the others (the training settings) from the model, and the trials numbered below
    `first` are all drawn so: a structure the model wrote off is tried at settings the model
    found sound, as a study's queued defaults are, and not cut short by the pruner for a slow start
    that a random learning rate or batch size gave it."""

    def __init__(
        self,
        model: optuna.samplers.BaseSampler,
        *,
        share: float,
        seed: int,
        structure: Collection[str] | None = None,
        first: int = 0,
    ) -> None:
        self.model = model
        self.structure = None if structure is None else frozenset(structure)
        self.first = first
        # Streams of their own: the model's start-up draws from a RandomSampler seeded with
        # `seed`, and the same seed here would draw those same configurations again.
        own = np.random.SeedSequence([seed, 0xE4]).generate_state(2)
        self.random = optuna.samplers.RandomSampler(seed=int(own[0]))
        self.share = share
        self.rng = np.random.default_rng(int(own[1]))
        self.drawn_at_random: set[int] = set()  # trial numbers

    def before_trial(self, study: optuna.Study, trial: FrozenTrial) -> None:
        # A queued trial (a queued default, a race entry) has its parameters already: not drawn.
        if "fixed_params" in trial.system_attrs:
            pass
        elif trial.number < self.first or self.rng.random() < self.share:
            self.drawn_at_random.add(trial.number)
        self.model.before_trial(study, trial)

    def infer_relative_search_space(
        self, study: optuna.Study, trial: FrozenTrial
    ) -> dict[str, BaseDistribution]:
        structure = self.structure
        if trial.number not in self.drawn_at_random:
            return self.model.infer_relative_search_space(study, trial)
        if structure is None:
            return {}
        space = self.model.infer_relative_search_space(study, trial)
        return {name: d for name, d in space.items() if name not in structure}

    def sample_relative(
        self, study: optuna.Study, trial: FrozenTrial, search_space: dict[str, BaseDistribution]
    ) -> dict[str, Any]:
        if not search_space:
            return {}
        return self.model.sample_relative(study, trial, search_space)

    def sample_independent(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        param_name: str,
        param_distribution: BaseDistribution,
    ) -> Any:
        at_random = trial.number in self.drawn_at_random and (
            self.structure is None or param_name in self.structure
        )
        sampler = self.random if at_random else self.model
        return sampler.sample_independent(study, trial, param_name, param_distribution)

    def after_trial(
        self,
        study: optuna.Study,
        trial: FrozenTrial,
        state: TrialState,
        values: Sequence[float] | None,
    ) -> None:
        self.drawn_at_random.discard(trial.number)
        self.model.after_trial(study, trial, state, values)

    def reseed_rng(self) -> None:
        self.model.reseed_rng()
        self.random.reseed_rng()
        self.rng = np.random.default_rng()


class WarmupFirstPercentilePruner(optuna.pruners.PercentilePruner):
    """Optuna's PercentilePruner (MedianPruner is its 50th percentile), which reads all completed
    trials at every epoch, before it looks at the warm-up. This one answers the warm-up epochs
    without that read, and reads the completed trials once per trial, at its first epoch past
    the warm-up: on a study of thousands of trials on PostgreSQL each read is a round of
    queries and a sort of the whole history (benchmarks/scale.py). One worker: Optuna's
    decisions exactly. Several: a trial that completes while another runs counts for the
    next one."""

    def __init__(
        self,
        percentile: float,
        *,
        n_startup_trials: int,
        n_warmup_steps: int,
        spare_drawn_at_random: bool = False,
    ) -> None:
        super().__init__(
            percentile, n_startup_trials=n_startup_trials, n_warmup_steps=n_warmup_steps
        )
        self.warmup = n_warmup_steps
        # A trial drawn at random (the user attribute AT_RANDOM) is never pruned: it trains in
        # full, so the model learns what its structure is worth at the end, not at the warm-up.
        self.spare = spare_drawn_at_random
        self.snapshot: tuple[tuple[str, int], _Completed] | None = None  # a trial's view

    def prune(self, study: optuna.Study, trial: optuna.trial.FrozenTrial) -> bool:
        if trial.last_step is None or trial.last_step < self.warmup:
            return False
        if self.spare and trial.user_attrs.get(AT_RANDOM):
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


SPARING_PRUNERS = ("percentile", "median")  # the pruners --spare-random-draws applies to


def sparing_refused(name: str, *, spare_drawn_at_random: bool) -> str | None:
    """Why pruner `name` cannot spare the trials drawn at random, in one line; None if it can
    (or is not asked to)."""
    if spare_drawn_at_random and name not in SPARING_PRUNERS:
        return f"--spare-random-draws needs --pruner {' or '.join(SPARING_PRUNERS)}, not {name}"
    return None


def spares_draws(given: bool | None, *, share: float, pruner: str) -> bool:
    """--spare-random-draws as given, else on wherever trials are drawn at random and the
    pruner can spare them: the draws at random are the search's look at structures the model
    wrote off, and cut at the warm-up they tell it only how fast a structure starts (a cold
    search pruned most of its batch-norm draws there and settled on nets without it,
    docs/results.md)."""
    if given is not None:
        return given
    return share > 0 and pruner in SPARING_PRUNERS


def make_pruner(
    name: str, *, epochs: int, spare_drawn_at_random: bool = False
) -> optuna.pruners.BasePruner:
    """Pruner `name`; with `spare_drawn_at_random` (percentile and median), a trial drawn at
    random is never pruned."""
    refused = sparing_refused(name, spare_drawn_at_random=spare_drawn_at_random)
    if refused:
        raise ValueError(refused)
    if name in SPARING_PRUNERS:
        # After the warm-up, a trial goes on only while it is among the best KEEP_SHARE
        # (percentile) or half (median) of the completed trials at that epoch.
        percentile = 100 * KEEP_SHARE if name == "percentile" else 50.0
        return WarmupFirstPercentilePruner(
            percentile,
            n_startup_trials=5,
            n_warmup_steps=warmup_epochs(epochs),
            spare_drawn_at_random=spare_drawn_at_random,
        )
    if name == "hyperband":
        return optuna.pruners.HyperbandPruner(min_resource=1, max_resource=epochs)
    if name == "none":
        return optuna.pruners.NopPruner()
    raise ValueError(f"unknown pruner {name!r}; choose one of {', '.join(PRUNERS)}")


@dataclass(frozen=True)
class Strategy:
    """A run's search strategy as its flags give it: each field is the flag of its name, and
    the class holds every choice and default its help is built from."""

    sampler: str = "tpe"
    pruner: str = DEFAULT_PRUNER
    random_share: float | None = None  # None: settled by the study (settled())
    random_draws: str = DEFAULT_RANDOM_DRAWS
    spare_random_draws: bool | None = None  # None: settled by the share and the pruner

    SAMPLERS: ClassVar[tuple[str, ...]] = SAMPLERS
    PRUNERS: ClassVar[tuple[str, ...]] = PRUNERS
    RANDOM_DRAWS: ClassVar[tuple[str, ...]] = RANDOM_DRAWS
    SPARING_PRUNERS: ClassVar[tuple[str, ...]] = SPARING_PRUNERS
    COLD_RANDOM_SHARE: ClassVar[float] = COLD_RANDOM_SHARE
    WARMUP_SHARE: ClassVar[float] = WARMUP_SHARE
    KEEP_SHARE: ClassVar[float] = KEEP_SHARE

    def refused(self) -> str | None:
        """Why these choices do not go together, in one line; None where they do."""
        return share_refused(self.sampler, share=self.random_share) or sparing_refused(
            self.pruner, spare_drawn_at_random=bool(self.spare_random_draws)
        )

    def settled(self, *, cold_start: bool) -> Strategy:
        """With the share drawn at random and the sparing of those draws decided for a study
        (cold or warm)."""
        share = random_share(self.random_share, cold_start=cold_start, sampler=self.sampler)
        spare = spares_draws(self.spare_random_draws, share=share, pruner=self.pruner)
        return replace(self, random_share=share, spare_random_draws=spare)

    def make_sampler(
        self, *, seed: int, parallel: bool, trials: int
    ) -> optuna.samplers.BaseSampler:
        return make_sampler(
            self.sampler,
            seed=seed,
            parallel=parallel,
            trials=trials,
            random_share=self.random_share or 0.0,
            structure=STRUCTURE if self.random_draws == "structure" else None,
        )

    def make_pruner(self, *, epochs: int) -> optuna.pruners.BasePruner:
        return make_pruner(
            self.pruner, epochs=epochs, spare_drawn_at_random=bool(self.spare_random_draws)
        )
