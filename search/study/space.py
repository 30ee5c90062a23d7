"""The search space: the one place where parameter names live.

The search calls `suggest_config` on a live trial; the final evaluation calls it on a stored
FrozenTrial, which replays the recorded values. Parameter names are Config's field names.
"""

from __future__ import annotations

import optuna

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


def baseline_params(family: str) -> dict[str, object]:
    """Config's defaults for `family`, as the parameters `suggest_config` would record.

    A new study queues one such trial per family, so the sampler meets every family at a sound
    setting before it narrows down, whatever its first random draws were.
    """
    return recorded_params(Config(family=family))


# The bounds of the widths `suggest_config` samples, which a budget may shrink (budget.py).
MIN_FILTERS, MIN_HIDDEN = 8, 16
