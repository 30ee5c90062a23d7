"""The variants a final evaluation trains on the same rounds as the selected configuration."""

from __future__ import annotations

from dataclasses import replace

from models import Config

SELECTED = "selected"
DEFAULT = "default config"  # the search's yardstick: Config's defaults, the study's epochs


def default_config(epochs: int) -> Config:
    """The configuration a search must beat: Config's defaults (the siamese baseline a new
    study queues first) with the study's epoch budget."""
    return Config(epochs=epochs)


def variants(config: Config, *, ablation: bool) -> dict[str, Config]:
    """The selected config; the default configuration (unless it is the selection); and with
    ablation, weight sharing on/off x auxiliary loss on/off (alpha = 1 is off) and the mlp
    baseline, all with the selected hyper-parameters."""
    out = {SELECTED: config}
    default = default_config(config.epochs)
    if default != config:
        out[DEFAULT] = default
    if not ablation:
        return out
    aux_alpha = config.alpha if config.alpha < 1.0 else 0.5
    siamese = config.family == "siamese"
    for ws in [True, False] if siamese else [False]:
        for aux in (True, False):
            v = replace(config, weight_sharing=ws, alpha=aux_alpha if aux else 1.0)
            if v != config:
                name = config.family + (f" ws={'on' if ws else 'off'}" if siamese else "")
                out[f"{name} aux={'on' if aux else 'off'}"] = v
    if config.family != "mlp":
        out["mlp baseline"] = replace(config, family="mlp", weight_sharing=False)
    return out
