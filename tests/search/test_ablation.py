from __future__ import annotations

from dataclasses import replace

from models import Config
from search.evaluation.ablation import (
    DEFAULT,
    DEFAULT_ONE_NET,
    ONE_NET,
    SELECTION,
    first_nets,
    variants,
)


def test_a_siamese_selection_gets_the_four_cells_and_the_mlp() -> None:
    config = Config(alpha=0.3)
    out = variants(config, ablation=True)
    assert out[SELECTION] == config
    assert out["siamese ws=on aux=off"] == replace(config, alpha=1.0)
    assert out["siamese ws=off aux=on"] == replace(config, weight_sharing=False)
    assert out["siamese ws=off aux=off"] == replace(config, weight_sharing=False, alpha=1.0)
    assert out["mlp"] == replace(config, family="mlp", weight_sharing=False)
    assert out[DEFAULT] == Config()  # the default, on the same rounds
    assert len(out) == 6  # the selected cell (ws on, aux on) is not repeated


def test_a_selection_without_auxiliary_loss_is_compared_with_alpha_one_half() -> None:
    out = variants(Config(family="cnn", weight_sharing=False, alpha=1.0), ablation=True)
    assert set(out) == {SELECTION, DEFAULT, "cnn aux=on", "mlp"}
    assert out["cnn aux=on"].alpha == 0.5


def test_no_ablation_is_the_selection_and_the_default() -> None:
    config = Config(nb_filters=16, epochs=5)
    assert variants(config, ablation=False) == {SELECTION: config, DEFAULT: Config(epochs=5)}


def test_the_default_selected_is_not_trained_twice() -> None:
    assert variants(Config(epochs=5), ablation=False) == {SELECTION: Config(epochs=5)}


def test_an_ensemble_is_compared_with_the_default_as_an_ensemble_and_both_as_one_net() -> None:
    config = Config(nb_filters=48, alpha=0.3)
    out = variants(config, ablation=True, ensemble=3)
    assert out[SELECTION] == replace(config, ensemble=3)
    assert out[DEFAULT] == Config(ensemble=3)  # like for like: the same number of nets
    assert out[ONE_NET] == config and out[DEFAULT_ONE_NET] == Config()
    assert out["siamese ws=on aux=off"] == replace(config, alpha=1.0)  # one net
    assert all(c.ensemble == 1 for name, c in out.items() if name not in (SELECTION, DEFAULT))
    assert len(out) == 8


def test_the_default_as_an_ensemble_is_compared_with_itself_as_one_net() -> None:
    out = variants(Config(epochs=5), ablation=False, ensemble=3)
    assert out == {SELECTION: Config(epochs=5, ensemble=3), ONE_NET: Config(epochs=5)}


def test_each_ensemble_s_one_net_variant_is_read_off_its_first_net() -> None:
    config = Config(nb_filters=48, alpha=0.3)
    both = first_nets(variants(config, ablation=True, ensemble=3))
    assert both == {SELECTION: ONE_NET, DEFAULT: DEFAULT_ONE_NET}
    assert first_nets(variants(Config(), ablation=False, ensemble=2)) == {SELECTION: ONE_NET}
    assert first_nets(variants(config, ablation=True)) == {}
