"""The variants a final evaluation trains on the same rounds as the selection."""

from __future__ import annotations

from dataclasses import replace

from models import Config
from search.study import fitted

SELECTION = "selection"
DEFAULT = "default"  # the default configuration (the shrunk default under a budget)
ONE_NET = "selection, one net"  # the selection without its ensemble
DEFAULT_ONE_NET = "default, one net"  # the default without its ensemble
MLP = "mlp"
# The names a final evaluation's JSON held before: read where a file holds them.
OLD_NAMES = {
    "selected": SELECTION,
    "default config": DEFAULT,
    "selected, one net": ONE_NET,
    "default config, one net": DEFAULT_ONE_NET,
    "mlp baseline": MLP,
}


def default_config(epochs: int) -> Config:
    """The default configuration, which every search is measured against: Config's defaults
    (the siamese default a new warm study queues first) with the study's epoch budget."""
    return Config(epochs=epochs)


def variants(
    config: Config,
    *,
    ablation: bool,
    ensemble: int = 1,
    default: Config | None = None,
    size: int | None = None,
) -> dict[str, Config]:
    """The selection, trained as `ensemble` nets, and the default configuration trained
    the same way (unless it is the selection), so that the gain compares like with like; with
    more than one net, each of the two also as one net (its ensemble's first net), so that the
    search's gain shows one net against one net, apart from what the ensemble adds; and with
    ablation, weight sharing on/off x auxiliary loss on/off (alpha = 1 is off) and an mlp, one
    net each with the selection's hyper-parameters.

    `default` is the default configuration, or the shrunk default under a budget; with `size`
    (a study with a budget), an ablation variant larger than `size` parameters is shrunk to it,
    so that weight sharing and the auxiliary loss are judged at the selection's size."""
    single = replace(config, ensemble=1)
    base = replace(default or default_config(config.epochs), epochs=config.epochs, ensemble=1)
    out = {SELECTION: replace(single, ensemble=ensemble)}
    if ensemble > 1:
        out[ONE_NET] = single
    if base != single:
        out[DEFAULT] = replace(base, ensemble=ensemble)
        if ensemble > 1:
            out[DEFAULT_ONE_NET] = base
    if not ablation:
        return out
    aux_alpha = single.alpha if single.alpha < 1.0 else 0.5
    siamese = single.family == "siamese"
    for ws in [True, False] if siamese else [False]:
        for aux in (True, False):
            v = replace(single, weight_sharing=ws, alpha=aux_alpha if aux else 1.0)
            if v != single:
                name = single.family + (f" ws={'on' if ws else 'off'}" if siamese else "")
                out[f"{name} aux={'on' if aux else 'off'}"] = fitted(v, size)
    if single.family != "mlp":
        out[MLP] = fitted(replace(single, family="mlp", weight_sharing=False), size)
    return out


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
