from __future__ import annotations

import pytest
import torch

from data import DataError, Source, make_splits


def test_embedded_source_is_real_mnist_split_into_disjoint_pools(mnist5k: Source) -> None:
    assert mnist5k.train_images.shape == (3000, 14, 14)
    assert mnist5k.test_images.shape == (2000, 14, 14)
    assert mnist5k.train_images.dtype == torch.float32
    assert mnist5k.train_images.min() >= 0.0 and mnist5k.train_images.max() == 255.0
    assert mnist5k.train_labels.bincount().tolist() == [300] * 10
    assert mnist5k.test_labels.bincount().tolist() == [200] * 10
    train_rows = {bytes(r.numpy()) for r in mnist5k.train_images.flatten(1)}
    test_rows = {bytes(r.numpy()) for r in mnist5k.test_images.flatten(1)}
    assert not train_rows & test_rows


def test_pairs_follow_the_protocol(mnist5k: Source) -> None:
    s = make_splits(mnist5k, seed=3, n_test=1000)
    assert s.test is not None
    for pairs, images, labels in [
        (s.train, mnist5k.train_images, mnist5k.train_labels),
        (s.val, mnist5k.train_images, mnist5k.train_labels),
        (s.test, mnist5k.test_images, mnist5k.test_labels),
    ]:
        n = len(pairs)
        assert pairs.input.shape == (n, 2, 14, 14) and pairs.input.dtype == torch.float32
        assert pairs.target.shape == (n,) and pairs.target.dtype == torch.int64
        assert pairs.classes.shape == (n, 2) and pairs.classes.dtype == torch.int64
        assert torch.equal(pairs.input, images[pairs.image_ids])
        assert torch.equal(pairs.classes, labels[pairs.image_ids])
        assert torch.equal(pairs.target, (pairs.classes[:, 0] <= pairs.classes[:, 1]).long())
    assert (len(s.train), len(s.val), len(s.test)) == (1000, 500, 1000)


def test_no_image_is_used_twice_and_splits_are_disjoint(mnist5k: Source) -> None:
    s = make_splits(mnist5k, seed=4, n_test=1000)
    assert s.test is not None
    train_pool_ids = torch.cat([s.train.image_ids.flatten(), s.val.image_ids.flatten()])
    assert len(train_pool_ids.unique()) == len(train_pool_ids) == 3000
    assert len(s.test.image_ids.flatten().unique()) == 2000


def test_same_seed_same_pairs_other_seed_other_pairs(mnist5k: Source) -> None:
    a, b, c = (make_splits(mnist5k, seed=seed) for seed in (7, 7, 8))
    assert torch.equal(a.train.image_ids, b.train.image_ids)
    assert torch.equal(a.val.image_ids, b.val.image_ids)
    assert not torch.equal(a.train.image_ids, c.train.image_ids)


def test_search_splits_do_not_draw_test_pairs_and_match_the_final_draw(mnist5k: Source) -> None:
    search = make_splits(mnist5k, seed=11)
    final = make_splits(mnist5k, seed=11, n_test=1000)
    assert search.test is None
    assert torch.equal(search.train.image_ids, final.train.image_ids)
    assert torch.equal(search.val.image_ids, final.val.image_ids)


def test_share_of_positive_targets_is_near_055(mnist5k: Source) -> None:
    # Balanced classes give P(a <= b) = 55/100; over 10 draws of 1000 pairs the standard error
    # is about 0.005, so +-0.02 fails only on a wrong target definition.
    targets = torch.cat([make_splits(mnist5k, seed=s).train.target for s in range(10)])
    assert abs(targets.float().mean().item() - 0.55) < 0.02


def test_normalization_uses_training_images_only(mnist5k: Source) -> None:
    s = make_splits(mnist5k, seed=5)
    assert s.mean == pytest.approx(s.train.input.mean().item())
    assert s.std == pytest.approx(s.train.input.std().item())
    assert s.mean != pytest.approx(s.val.input.mean().item(), abs=1e-6)


@pytest.mark.parametrize(
    ("n_train", "n_val", "n_test"),
    [(1400, 200, 0), (1000, 501, 0), (1000, None, 1001), (1500, None, 0)],
)
def test_more_pairs_than_the_pools_allow_is_a_clear_error(
    mnist5k: Source, n_train: int, n_val: int | None, n_test: int
) -> None:
    with pytest.raises(DataError, match="ask for"):
        make_splits(mnist5k, seed=0, n_train=n_train, n_val=n_val, n_test=n_test)
