from __future__ import annotations

import pytest
import torch

from data import Splits
from models import Config, DeviceError, Diverged, resolve_device, train
from models.augment import augment
from models.loss import pair_loss
from models.nets import build_model

CPU = torch.device("cpu")


def fit(config: Config, splits: Splits, seed: int = 0, device: torch.device = CPU):
    return train(
        config, splits.train, {"val": splits.val},
        mean=splits.mean, std=splits.std, seed=seed, device=device, threads=1,
    )  # fmt: skip


def test_a_small_siamese_learns_the_task(splits: Splits) -> None:
    # Chance is 0.5 and always answering "<=" scores about 0.55; the MLP baselines of the
    # literature reach 0.71-0.76 after full training. 0.85 after 4 epochs can only be reached
    # by learning to read the digits.
    result = fit(Config(nb_filters=8, hidden_units=64, epochs=4, augment=False), splits)
    assert len(result.history) == 4
    assert result.history[-1].accuracy["val"] > 0.85
    assert result.history[-1].train_loss < result.history[0].train_loss
    assert 0.85 < result.train_accuracy <= 1.0


def test_same_seed_same_history(splits: Splits) -> None:
    config = Config(nb_filters=4, hidden_units=32, epochs=2, augment=True)
    a, b, c = fit(config, splits, 1), fit(config, splits, 1), fit(config, splits, 2)
    assert [h.train_loss for h in a.history] == [h.train_loss for h in b.history]
    assert [h.train_loss for h in a.history] != [h.train_loss for h in c.history]


def test_the_callback_can_stop_training(splits: Splits) -> None:
    class Stop(Exception):
        pass

    def on_epoch(stats) -> None:
        if stats.epoch == 2:
            raise Stop

    with pytest.raises(Stop):
        train(Config(nb_filters=4, epochs=5), splits.train, {"val": splits.val},
              mean=splits.mean, std=splits.std, seed=0, device=CPU, on_epoch=on_epoch)  # fmt: skip


@pytest.mark.parametrize("family", ["mlp", "cnn"])
def test_alpha_one_gives_the_auxiliary_output_no_gradient(family: str, splits: Splits) -> None:
    x, target = splits.train.input[:32] / 255, splits.train.target[:32]
    classes = splits.train.classes[:32]
    for alpha, expect_zero in [(1.0, True), (0.5, False)]:
        model = build_model(Config(family=family, head="learned", nb_filters=4, alpha=alpha))
        main, digits = model(x)
        pair_loss(main, digits, target, classes, alpha).backward()
        grad = model.aux.weight.grad
        assert (grad is None or bool((grad == 0).all())) == expect_zero


def test_alpha_one_loss_is_the_main_loss_only() -> None:
    main, digits = torch.randn(8, 2, requires_grad=True), torch.randn(8, 2, 10, requires_grad=True)
    target, classes = torch.randint(0, 2, (8,)), torch.randint(0, 10, (8, 2))
    pair_loss(main, digits, target, classes, 1.0).backward()
    assert digits.grad is None and main.grad is not None


def test_an_absurd_learning_rate_raises_diverged(splits: Splits) -> None:
    with pytest.raises(Diverged, match="loss became"):
        fit(Config(nb_filters=4, lr=1e12, batch_norm=False, head="learned", epochs=3), splits)


def test_swap_augmentation_keeps_targets_consistent(splits: Splits) -> None:
    g = torch.Generator().manual_seed(0)
    x, classes, target = augment(splits.train.input[:200], splits.train.classes[:200], g)
    assert x.shape == (200, 2, 14, 14)
    assert torch.equal(target, (classes[:, 0] <= classes[:, 1]).long())
    swapped = (classes != splits.train.classes[:200]).any(1)
    assert 0 < swapped.sum() < 200  # some pairs swapped, some not


def test_device_resolution() -> None:
    assert resolve_device("cpu") == CPU
    assert resolve_device("auto").type == ("cuda" if torch.cuda.is_available() else "cpu")
    if not torch.cuda.is_available():
        with pytest.raises(DeviceError, match="no CUDA device"):
            resolve_device("cuda")


def test_a_last_batch_of_one_pair_does_not_break_batch_norm(splits: Splits) -> None:
    # 1000 training pairs in batches of 9 leave one pair over.
    config = Config(family="cnn", nb_filters=4, batch_size=9, batch_norm=True, epochs=1)
    assert len(fit(config, splits).history) == 1
