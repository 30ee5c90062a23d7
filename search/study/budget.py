"""A parameter budget (--max-params): what fits it, known before any training.

A configuration's size is one net's parameter count (models.parameter_count, on the meta
device). A search trial over the budget is never trained: the objective records its count as
the trial's constraint (optuna's `Trial.set_constraint`, which TPE reads to learn where the
feasible region is) and prunes it at once. A budgeted search is measured against the default
configuration where it fits; where it does not, against the shrunk default: the default with
its widths (nb_filters, hidden_units) shrunk by one factor until it fits, the feasible
configuration nearest to it.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from functools import cache

from models import FAMILIES, HEADS, Config, parameter_count
from search.study.space import MIN_FILTERS, MIN_HIDDEN, recorded_params

CONSTRAINT = "params"  # the key of the trial's constraint: parameters - budget (<= 0 fits)
OVER_BUDGET = "over_budget"  # the same number as a user attribute, shown by optuna-dashboard


@cache
def smallest_params() -> int:
    """One net's parameter count of the smallest configuration in the search space."""
    return min(
        parameter_count(
            Config(
                family=family,
                nb_filters=MIN_FILTERS,
                conv_layers=layers,
                kernel_size=3,
                hidden_units=MIN_HIDDEN,
                batch_norm=bn,
                weight_sharing=family == "siamese",
                head=head,
            )
        )
        for family, layers, bn, head in itertools.product(FAMILIES, (1, 2, 3), (True, False), HEADS)
    )


def shrunk(config: Config, max_params: int) -> Config | None:
    """`config` itself if it fits `max_params`, else with nb_filters and hidden_units scaled
    down by the largest common factor (2% steps, within the search space's bounds) that makes
    it fit; None if even the smallest widths do not."""
    if parameter_count(config) <= max_params:
        return config
    conv = config.family != "mlp"
    scale = 1.0
    while True:
        scale *= 0.98
        candidate = replace(
            config,
            nb_filters=max(MIN_FILTERS, round(config.nb_filters * scale))
            if conv
            else config.nb_filters,
            hidden_units=max(MIN_HIDDEN, round(config.hidden_units * scale)),
        )
        if parameter_count(candidate) <= max_params:
            return candidate
        if candidate.hidden_units == MIN_HIDDEN and (
            not conv or candidate.nb_filters == MIN_FILTERS
        ):
            return None


def narrowest(config: Config) -> Config:
    """`config` with the smallest widths of the search space."""
    conv = config.family != "mlp"
    return replace(
        config,
        nb_filters=MIN_FILTERS if conv else config.nb_filters,
        hidden_units=MIN_HIDDEN,
    )


@dataclass(frozen=True)
class BudgetDefault:
    """The configuration a search under a budget is measured against (the default
    configuration, or the shrunk default), and why it is that one."""

    config: Config
    params: int
    why: str
    name: str  # in a few words

    @property
    def recorded(self) -> dict[str, object]:
        return recorded_params(self.config)


@cache
def default_in_budget(
    max_params: int | None, *, epochs: int = Config.epochs
) -> BudgetDefault | None:
    """The default configuration where it fits the budget, else the shrunk default; None where
    not even that fits."""
    default = Config(epochs=epochs)
    size = parameter_count(default)
    if max_params is None or size <= max_params:
        return BudgetDefault(
            default, size, "the default configuration", "the default configuration"
        )
    fitted = shrunk(default, max_params)
    if fitted is None:
        return None
    n = parameter_count(fitted)
    return BudgetDefault(
        fitted,
        n,
        f"the default configuration ({size:,} parameters) shrunk to the budget of "
        f"{max_params:,}: nb_filters {default.nb_filters} -> {fitted.nb_filters}, hidden_units "
        f"{default.hidden_units} -> {fitted.hidden_units} ({n:,} parameters)",
        f"the shrunk default ({n:,} parameters)",
    )


def queued_defaults(max_params: int | None) -> list[Config]:
    """Config's defaults of each family, each shrunk to the budget where it is over it (a
    family that cannot fit is left out): the trials a new warm study queues first."""
    configs = [Config(family=family) for family in FAMILIES]
    if max_params is None:
        return configs
    return [c for c in (shrunk(c, max_params) for c in configs) if c is not None]


def fitted(config: Config, size: int | None) -> Config:
    """`config` shrunk to at most `size` parameters where it is larger (None: as it is); the
    smallest widths of the space where even they are larger."""
    if size is None:
        return config
    return shrunk(config, size) or narrowest(config)
