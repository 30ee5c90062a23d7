from __future__ import annotations

from dataclasses import replace

import pytest
import torch

from data import Splits
from models import Config, TrainResult, train
from models.ensemble import Ensemble, reads_digits_alone
from models.nets import build_model, digits_comparison
from models.runs import member_seed
from models.scoring import Tensors, evaluate

CPU = torch.device("cpu")


@pytest.mark.parametrize("head", ["digits", "learned"])
def test_an_ensemble_predicts_with_the_mean_of_its_nets_posteriors(head: str) -> None:
    torch.manual_seed(0)
    nets = [build_model(Config(nb_filters=4, head=head)).eval() for _ in range(3)]
    x = torch.randn(16, 2, 14, 14)
    with torch.no_grad():
        outputs = [net(x) for net in nets]
        main, digits = Ensemble(nets).eval()(x)
    mean_digits = torch.stack([d.softmax(-1) for _, d in outputs]).mean(0)
    torch.testing.assert_close(digits.softmax(-1), mean_digits)
    if head == "digits":  # P(first <= second) from the mean digit posteriors
        torch.testing.assert_close(main, digits_comparison(mean_digits.log()))
    else:
        mean_main = torch.stack([m.softmax(-1) for m, _ in outputs]).mean(0)
        torch.testing.assert_close(main.softmax(-1), mean_main)


def test_copies_of_one_net_score_as_that_net(splits: Splits) -> None:
    torch.manual_seed(1)
    net = build_model(Config(nb_filters=4, weight_sharing=False))
    data = Tensors.of(splits.val, splits.mean, splits.std, CPU)
    single = evaluate(net, data, all_pairs=True)
    together = Ensemble([net, net])
    assert reads_digits_alone(together) and single.all_pairs is not None
    assert evaluate(together, data, all_pairs=True) == pytest.approx(single)


def test_an_ensemble_of_nets_trains_reproducibly_and_apart_from_one_net(splits: Splits) -> None:
    def fit(config: Config, seed: int) -> list[tuple[float, float, float]]:
        result = train(
            config, splits.train, {"val": splits.val}, mean=splits.mean, std=splits.std,
            seed=seed, device=CPU, threads=1, all_pairs=True,
        )  # fmt: skip
        return [(h.train_loss, h.accuracy["val"], h.all_pairs["val"]) for h in result.history]

    config = Config(nb_filters=4, hidden_units=32, epochs=2, ensemble=2)
    two = fit(config, 3)
    assert two == fit(config, 3) and two != fit(config, 4)
    assert two != fit(Config(nb_filters=4, hidden_units=32, epochs=2), 3)
    # the first net keeps the run's seed, so a single net is what it always was
    assert member_seed(3, 0) == 3 and len({member_seed(3, k) for k in range(5)}) == 5


def test_an_ensemble_size_out_of_range_is_refused() -> None:
    for n in (0, 11):
        with pytest.raises(ValueError, match="ensemble"):
            Config(ensemble=n)


@pytest.mark.parametrize("pack", [False, True])
def test_the_first_net_scored_alone_is_the_single_net_of_the_run_seed(
    pack: bool, splits: Splits
) -> None:
    def fit(config: Config, **kw: bool) -> TrainResult:
        return train(
            config, splits.train, {"val": splits.val}, mean=splits.mean, std=splits.std,
            seed=5, device=CPU, threads=1, all_pairs=True, pack=pack, **kw,
        )  # fmt: skip

    def curve(result: TrainResult) -> list[tuple[float, float, float, float | None]]:
        return [
            (h.train_loss, h.accuracy["val"], h.digits["val"], h.all_pairs.get("val"))
            for h in result.history
        ]

    # Every net draws its dropout from its own stream, so the first net of an ensemble trains
    # as a single net from the run's seed: exactly when the nets train one at a time, to
    # float tolerance when they train packed (sums in another order).
    config = Config(nb_filters=4, hidden_units=32, epochs=2, dropout=0.2)
    single = fit(config)
    both = fit(replace(config, ensemble=2), first_net=True)
    assert both.first_net is not None and single.first_net is None
    if pack:
        for a, b in zip(curve(both.first_net), curve(single), strict=True):
            assert a == pytest.approx(b, rel=1e-3, abs=2e-3)
    else:
        assert curve(both.first_net) == curve(single)
        assert both.first_net.train_accuracy == single.train_accuracy
    # scoring the first net alone leaves the ensemble's own numbers as they were
    assert curve(both) == curve(fit(replace(config, ensemble=2)))
    assert curve(both) != curve(single)
