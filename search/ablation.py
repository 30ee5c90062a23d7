"""The variants a final evaluation trains on the same rounds as the selected configuration."""

from __future__ import annotations

from dataclasses import replace

from models import Config

SELECTED = "selected"
DEFAULT = "default config"  # the search's yardstick: Config's defaults, the study's epochs
ONE_NET = "selected, one net"  # the selection without its ensemble: the search's own share


def default_config(epochs: int) -> Config:
    """The configuration a search must beat: Config's defaults (the siamese baseline a new
    study queues first) with the study's epoch budget."""
    return Config(epochs=epochs)


def variants(config: Config, *, ablation: bool, ensemble: int = 1) -> dict[str, Config]:
    """The selected config, trained as `ensemble` nets; as one net too when that is more than
    one, so the search's share of the gain shows apart from the ensemble's; the default
    configuration (one net, unless it is the selection); and with ablation, weight sharing
    on/off x auxiliary loss on/off (alpha = 1 is off) and the mlp baseline, one net each with
    the selected hyper-parameters."""
    single = replace(config, ensemble=1)
    out = {SELECTED: replace(single, ensemble=ensemble)}
    default = default_config(config.epochs)
    if ensemble > 1 and single != default:
        out[ONE_NET] = single
    if default != out[SELECTED]:
        out[DEFAULT] = default
    if not ablation:
        return out
    aux_alpha = single.alpha if single.alpha < 1.0 else 0.5
    siamese = single.family == "siamese"
    for ws in [True, False] if siamese else [False]:
        for aux in (True, False):
            v = replace(single, weight_sharing=ws, alpha=aux_alpha if aux else 1.0)
            if v != single:
                name = single.family + (f" ws={'on' if ws else 'off'}" if siamese else "")
                out[f"{name} aux={'on' if aux else 'off'}"] = v
    if single.family != "mlp":
        out["mlp baseline"] = replace(single, family="mlp", weight_sharing=False)
    return out


def first_net_variant(configs: dict[str, Config]) -> str | None:
    """The variant that is the selection as one net, when the selection is an ensemble: it is
    read off the ensemble's first net in each round rather than trained again."""
    selected = configs[SELECTED]
    if selected.ensemble == 1:
        return None
    single = replace(selected, ensemble=1)
    return next((name for name in (ONE_NET, DEFAULT) if configs.get(name) == single), None)
