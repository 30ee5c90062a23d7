"""Packed training is the same nets as training one net at a time."""

from __future__ import annotations

import math
from dataclasses import replace

import pytest
import torch

from data import Splits
from models import Config, Run, train_runs
from models.packed import PackedNet
from models.runs import member_seed, new_net

CPU = torch.device("cpu")
SMALL = Config(nb_filters=4, hidden_units=16, epochs=3, batch_size=50, augment=True)

# Every family and option of the search space, small.
CASES = {
    "mlp": replace(SMALL, family="mlp", head="learned"),
    "mlp digits": replace(SMALL, family="mlp", head="digits", batch_norm=False),
    "cnn": replace(SMALL, family="cnn", head="learned", conv_layers=3, kernel_size=5),
    "cnn digits": replace(SMALL, family="cnn", head="digits", batch_norm=False),
    "siamese ws digits": replace(SMALL, conv_layers=1),
    "siamese ws learned": replace(SMALL, head="learned", conv_layers=2, batch_norm=False),
    "siamese no ws": replace(SMALL, weight_sharing=False, conv_layers=3, kernel_size=5),
    "siamese no ws learned": replace(SMALL, weight_sharing=False, head="learned", alpha=1.0),
    "siamese no augment": replace(SMALL, augment=False, alpha=0.2),
}


def both(config: Config, runs: list[Run], **kw) -> tuple[list, list]:
    packed = train_runs(config, runs, device=CPU, pack=True, threads=1, **kw)
    alone = train_runs(config, runs, device=CPU, pack=False, threads=1, **kw)
    return packed, alone


def assert_same(packed, alone, flips: float = 0.011) -> None:
    """The same nets up to float rounding; an accuracy may differ by `flips` (a share)."""
    for p, a in zip(packed, alone, strict=True):
        assert len(p.history) == len(a.history)
        for hp, ha in zip(p.history, a.history, strict=True):
            # Float sums in another order, amplified by a few epochs of Adam: close, not equal.
            assert hp.train_loss == pytest.approx(ha.train_loss, rel=2e-3)
            # An accuracy is a count of right answers: float noise may flip one of them.
            for name in ha.accuracy:
                assert abs(hp.accuracy[name] - ha.accuracy[name]) <= flips
                assert abs(hp.digits[name] - ha.digits[name]) <= flips
            assert hp.all_pairs.keys() == ha.all_pairs.keys()
            for name in ha.all_pairs:
                assert hp.all_pairs[name] == pytest.approx(ha.all_pairs[name], abs=2e-3)
        assert abs(p.train_accuracy - a.train_accuracy) <= flips
        for np_, na in zip(p.nets, a.nets, strict=True):
            sp, sa = np_.state_dict(), na.state_dict()
            assert sp.keys() == sa.keys()
            # Over all weights together: a weight whose gradient is near 0 (a bias before a
            # batch norm) is moved by Adam's normalized steps in float noise's direction.
            diff = sum(float((sp[n].double() - sa[n].double()).norm() ** 2) for n in sa)
            size = sum(float(sa[n].double().norm() ** 2) for n in sa)
            assert diff <= 1e-4 * size


@pytest.mark.parametrize("case", CASES)
def test_packed_runs_train_the_same_nets_as_one_by_one(case: str, runs: list[Run]) -> None:
    config = replace(CASES[case], dropout=0.0, ensemble=2)
    packed, alone = both(config, runs, all_pairs=True, first_net=True)
    assert_same(packed, alone)
    assert_same([p.first_net for p in packed], [a.first_net for a in alone])


@pytest.mark.parametrize("case", ["mlp", "siamese ws digits", "siamese no ws"])
def test_each_net_draws_its_dropout_from_its_own_stream(case: str, runs: list[Run]) -> None:
    # With dropout, too, a net is the same packed or alone, and its training does not depend
    # on the other nets it trains beside.
    config = replace(CASES[case], dropout=0.3, ensemble=1)
    packed, alone = both(config, runs)
    assert_same(packed, alone)
    alone_first = train_runs(config, runs[:1], device=CPU, pack=False, threads=1)
    assert [h.train_loss for h in alone_first[0].history] == [
        h.train_loss for h in alone[0].history
    ]


def test_a_pack_starts_from_each_nets_own_initial_weights() -> None:
    config = replace(SMALL, weight_sharing=False)
    seeds = [member_seed(5, j) for j in range(3)]
    nets = [new_net(config, s, CPU) for s in seeds]
    back = PackedNet([new_net(config, s, CPU) for s in seeds]).unpack()
    for net, again in zip(nets, back, strict=True):
        for (name, a), b in zip(net.state_dict().items(), again.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


def test_a_diverging_pack_raises(splits: Splits) -> None:
    from models import Diverged

    run = Run(splits.train, {"val": splits.val}, splits.mean, splits.std, 0)
    config = replace(SMALL, lr=1e6, batch_norm=False, ensemble=2, epochs=3, augment=False)
    with pytest.raises(Diverged):
        for result in train_runs(config, [run, run], device=CPU, threads=1):
            assert all(math.isfinite(h.train_loss) for h in result.history)


def test_packed_runs_need_pair_sets_of_one_size(runs: list[Run]) -> None:
    short = replace(runs[1], train_pairs=runs[0].train_pairs)
    fewer = replace(short, eval_pairs={"other": runs[0].eval_pairs["val"]})
    with pytest.raises(ValueError, match="same names"):
        train_runs(replace(SMALL, epochs=1), [runs[0], fewer], device=CPU)
