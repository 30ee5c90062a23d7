from __future__ import annotations

from dataclasses import replace

from models import Config
from search.ablation import DEFAULT, SELECTED, variants


def test_a_siamese_selection_gets_the_four_cells_and_the_mlp() -> None:
    config = Config(alpha=0.3)
    out = variants(config, ablation=True)
    assert out[SELECTED] == config
    assert out["siamese ws=on aux=off"] == replace(config, alpha=1.0)
    assert out["siamese ws=off aux=on"] == replace(config, weight_sharing=False)
    assert out["siamese ws=off aux=off"] == replace(config, weight_sharing=False, alpha=1.0)
    assert out["mlp baseline"] == replace(config, family="mlp", weight_sharing=False)
    assert out[DEFAULT] == Config()  # the yardstick, on the same rounds
    assert len(out) == 6  # the selected cell (ws on, aux on) is not repeated


def test_a_selection_without_auxiliary_loss_is_compared_with_alpha_one_half() -> None:
    out = variants(Config(family="cnn", weight_sharing=False, alpha=1.0), ablation=True)
    assert set(out) == {SELECTED, DEFAULT, "cnn aux=on", "mlp baseline"}
    assert out["cnn aux=on"].alpha == 0.5


def test_no_ablation_is_the_selection_and_the_default() -> None:
    config = Config(nb_filters=16, epochs=5)
    assert variants(config, ablation=False) == {SELECTED: config, DEFAULT: Config(epochs=5)}


def test_the_default_selected_is_not_trained_twice() -> None:
    assert variants(Config(epochs=5), ablation=False) == {SELECTED: Config(epochs=5)}
