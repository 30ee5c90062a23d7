from __future__ import annotations

import itertools

import pytest
import torch

from data import Splits
from models import Config
from models.metrics import LESS_EQUAL, ROWS, all_pairs_accuracy
from models.nets import build_model
from models.scoring import Tensors, evaluate


def test_all_pairs_counts_every_ordered_pair_once() -> None:
    labels = torch.tensor([0, 3, 3, 7])
    sure = torch.nn.functional.one_hot(labels, 10).float()
    assert all_pairs_accuracy(sure, sure, labels) == 1.0
    wrong = sure.clone()
    wrong[3] = torch.nn.functional.one_hot(torch.tensor(1), 10).float()  # the 7 read as a 1
    # Pairs of the 7 with a 3 flip (3 <= 7 becomes 3 > 1, and back), 4 of the 12 ordered pairs;
    # the pairs with the 0 stay right (0 <= 1, 1 > 0).
    assert all_pairs_accuracy(wrong, wrong, labels) == pytest.approx(8 / 12)


@pytest.mark.parametrize("weight_sharing", [True, False])
def test_all_pairs_is_what_the_net_says_on_each_pair(splits: Splits, weight_sharing: bool) -> None:
    torch.manual_seed(0)
    model = build_model(Config(nb_filters=4, hidden_units=16, weight_sharing=weight_sharing))
    data = Tensors.of(splits.val, splits.mean, splits.std, torch.device("cpu"))
    images, labels = data.x[:20].reshape(-1, 14, 14), data.classes[:20].reshape(-1)  # 40 images
    scores = evaluate(model, Tensors(data.x[:20], data.target[:20], data.classes[:20]),
                      all_pairs=True)  # fmt: skip
    # The same accuracy from the net's forward pass on each of the 40 x 39 ordered pairs.
    pairs = [(i, j) for i, j in itertools.product(range(40), repeat=2) if i != j]
    x = torch.stack([torch.stack([images[i], images[j]]) for i, j in pairs])
    with torch.inference_mode():
        predicted = model.eval()(x)[0].argmax(1)
    truth = torch.tensor([int(labels[i] <= labels[j]) for i, j in pairs])
    assert scores.all_pairs == pytest.approx((predicted == truth).float().mean().item())


def test_only_a_net_that_reads_digits_alone_gets_all_pairs(splits: Splits) -> None:
    data = Tensors.of(splits.val, splits.mean, splits.std, torch.device("cpu"))
    for config in (Config(family="cnn", nb_filters=4), Config(head="learned", nb_filters=4)):
        assert evaluate(build_model(config), data, all_pairs=True).all_pairs is None


def test_all_pairs_in_blocks_equals_the_whole_matrix() -> None:
    g = torch.Generator().manual_seed(0)
    m = 2 * ROWS + 37  # three blocks, the last one short
    labels = torch.randint(0, 10, (m,), generator=g)
    first = torch.softmax(3 * torch.randn(m, 10, generator=g), 1)
    second = torch.softmax(3 * torch.randn(m, 10, generator=g), 1)
    whole = (first @ (LESS_EQUAL @ second.T)) > 0.5
    right = whole == (labels[:, None] <= labels[None, :])
    expected = (right.sum() - right.diagonal().sum()).item() / (m * (m - 1))
    assert all_pairs_accuracy(first, second, labels) == expected
