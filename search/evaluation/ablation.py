"""The variants a final evaluation trains on the same rounds as the selected configuration."""

from __future__ import annotations

from dataclasses import replace

from models import Config
from search.study import narrowest, shrunk

SELECTED = "selected"
DEFAULT = "default config"  # the search's yardstick: Config's defaults, the study's epochs
ONE_NET = "selected, one net"  # the selection without its ensemble
DEFAULT_ONE_NET = "default config, one net"  # the yardstick without its ensemble


def default_config(epochs: int) -> Config:
    """The configuration a search must beat: Config's defaults (the siamese baseline a new
    study queues first) with the study's epoch budget."""
    return Config(epochs=epochs)


def variants(
    config: Config,
    *,
    ablation: bool,
    ensemble: int = 1,
    yardstick: Config | None = None,
    size: int | None = None,
) -> dict[str, Config]:
    """The selected config, trained as `ensemble` nets, and the default configuration trained
    the same way (unless it is the selection), so that the gain compares like with like; with
    more than one net, each of the two also as one net (its ensemble's first net), so that the
    search's gain shows one net against one net, apart from what the ensemble adds; and with
    ablation, weight sharing on/off x auxiliary loss on/off (alpha = 1 is off) and the mlp
    baseline, one net each with the selected hyper-parameters.

    `yardstick` is the default configuration, or the default shrunk to the budget; with `size`
    (a study with a budget), an ablation variant larger than `size` parameters is shrunk to it,
    so that weight sharing and the auxiliary loss are judged at the selection's size."""
    single = replace(config, ensemble=1)
    default = replace(yardstick or default_config(config.epochs), epochs=config.epochs, ensemble=1)
    out = {SELECTED: replace(single, ensemble=ensemble)}
    if ensemble > 1:
        out[ONE_NET] = single
    if default != single:
        out[DEFAULT] = replace(default, ensemble=ensemble)
        if ensemble > 1:
            out[DEFAULT_ONE_NET] = default
    if not ablation:
        return out
    aux_alpha = single.alpha if single.alpha < 1.0 else 0.5
    siamese = single.family == "siamese"
    for ws in [True, False] if siamese else [False]:
        for aux in (True, False):
            v = replace(single, weight_sharing=ws, alpha=aux_alpha if aux else 1.0)
            if v != single:
                name = single.family + (f" ws={'on' if ws else 'off'}" if siamese else "")
                out[f"{name} aux={'on' if aux else 'off'}"] = at_size(v, size)
    if single.family != "mlp":
        out["mlp baseline"] = at_size(replace(single, family="mlp", weight_sharing=False), size)
    return out


def at_size(config: Config, size: int | None) -> Config:
    """`config` shrunk to at most `size` parameters where it is larger (None: as it is); the
    smallest widths of the space where even they are larger."""
    if size is None:
        return config
    return shrunk(config, size) or narrowest(config)


def first_nets(configs: dict[str, Config]) -> dict[str, str]:
    """For each ensemble variant whose configuration is also a one-net variant, that variant's
    name: it is read off the ensemble's first net in each round rather than trained again."""
    out = {}
    for name, config in configs.items():
        if config.ensemble > 1:
            single = replace(config, ensemble=1)
            found = next((n for n, c in configs.items() if c == single), None)
            if found is not None:
                out[name] = found
    return out
