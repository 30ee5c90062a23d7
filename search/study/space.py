"""The search space: the one place where parameter names live.

The search calls `suggest_config` on a live trial; the final evaluation calls it on a stored
FrozenTrial, which replays the recorded values. Parameter names are Config's field names.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import optuna
from optuna.distributions import BaseDistribution, CategoricalDistribution
from optuna.trial import FrozenTrial

from models import FAMILIES, Config


def suggest_config(trial: optuna.trial.BaseTrial, *, epochs: int) -> Config:
    """Map a trial to a Config. Conv parameters exist only for conv families, weight sharing
    only for the siamese one; the epoch budget is the study's, not searched, and augmentation
    is Config's measured default."""
    family = trial.suggest_categorical("family", list(FAMILIES))
    conv = family != "mlp"
    # nb_filters stops at 64 and batch_size starts at 16: wider nets and smaller batches cost
    # several times the time per epoch for no measured gain in validation accuracy, and the
    # best trials of the default searches stay inside these bounds (docs/results.md).
    return Config(
        family=family,
        nb_filters=trial.suggest_int("nb_filters", MIN_FILTERS, 64, log=True)
        if conv
        else Config.nb_filters,
        conv_layers=trial.suggest_int("conv_layers", 1, 3) if conv else Config.conv_layers,
        kernel_size=trial.suggest_categorical("kernel_size", [3, 5]) if conv else 3,
        hidden_units=trial.suggest_int("hidden_units", MIN_HIDDEN, 512, log=True),
        dropout=trial.suggest_float("dropout", 0.0, 0.6),
        batch_norm=trial.suggest_categorical("batch_norm", [True, False]),
        weight_sharing=(
            trial.suggest_categorical("weight_sharing", [True, False])
            if family == "siamese"
            else False
        ),
        head=trial.suggest_categorical("head", ["learned", "digits"]),
        alpha=trial.suggest_float("alpha", 0.0, 1.0),
        lr=trial.suggest_float("lr", 1e-4, 3e-2, log=True),
        batch_size=trial.suggest_int("batch_size", 16, 256, log=True),
        weight_decay=trial.suggest_float("weight_decay", 1e-6, 1e-1, log=True),
        epochs=epochs,
    )


def recorded_params(config: Config) -> dict[str, object]:
    """The parameters `suggest_config` records for `config` (a queued trial's, a race's)."""
    trial = optuna.trial.FixedTrial(config.to_dict())
    suggest_config(trial, epochs=1)
    return dict(trial.params)


def family_default_params(family: str) -> dict[str, object]:
    """Config's defaults for `family`, as the parameters `suggest_config` would record.

    A new study queues one such trial per family, so the sampler meets every family at a sound
    setting before it narrows down, whatever its first random draws were.
    """
    return recorded_params(Config(family=family))


@cache
def space_distributions() -> dict[str, BaseDistribution]:
    """Every parameter's distribution as `suggest_config` records it, from one trial per family
    of a throwaway in-memory study."""
    study = optuna.create_study(direction="maximize")
    out: dict[str, BaseDistribution] = {}
    for family in FAMILIES:
        study.enqueue_trial(family_default_params(family))
        trial = study.ask()
        suggest_config(trial, epochs=1)
        out.update(trial.distributions)
    return out


def foreign_parameter(trials: Sequence[FrozenTrial]) -> str | None:
    """Where a study's recorded parameters cannot be this search space's (another kind of
    distribution, another log scale, other choices: Optuna would refuse every new trial of the
    study), in words; None where they all fit."""
    space = space_distributions()
    for t in trials:
        for name, stored in t.distributions.items():
            expected = space.get(name)
            if expected is None:
                return f"trial {t.number} has a parameter {name!r} this search space lacks"
            if (
                type(stored) is not type(expected)
                or getattr(stored, "log", None) != getattr(expected, "log", None)
                or (isinstance(stored, CategoricalDistribution) and stored != expected)
            ):
                return (
                    f"trial {t.number} records {name!r} as {stored}, this search space as "
                    f"{expected}"
                )
    return None


# What a net is, as against how it is trained: the parameters a draw at random of the structure
# draws (strategies.Explore); the others (dropout, alpha, lr, batch_size, weight_decay) are
# training settings.
STRUCTURE = (
    "family",
    "nb_filters",
    "conv_layers",
    "kernel_size",
    "hidden_units",
    "batch_norm",
    "weight_sharing",
    "head",
)

# The bounds of the widths `suggest_config` samples, which a budget may shrink (budget.py).
MIN_FILTERS, MIN_HIDDEN = 8, 16
