"""Training, validation and test pairs from disjoint images, drawn from an explicit seed."""

from __future__ import annotations

from dataclasses import dataclass

import torch

from data.errors import DataError
from data.pairs import PairSet, generate_pairs
from data.sources import Source

# Validation pairs default to what the train pool has left, up to this many (`mnist5k` has 500
# left, MNIST-train 29,000). Sized by benchmarks/validation.py: the smallest size whose trial
# value is, within its 95% interval, no noisier than `mnist5k`'s; a trial's value is scored
# over all ordered pairs of the 2000 images, so scoring grows with their square.
MAX_DEFAULT_VAL_PAIRS = 1000


@dataclass(frozen=True)
class Splits:
    train: PairSet
    val: PairSet
    test: PairSet | None  # None during a search: test pairs are not even drawn
    mean: float  # normalization statistics of the training images only
    std: float
    seed: int


def make_splits(
    source: Source,
    *,
    seed: int,
    n_train: int = 1000,
    n_val: int | None = None,
    n_test: int = 0,
) -> Splits:
    # n_val = 0 is for the final evaluation, which trains on the training pairs and tests.
    """Draw disjoint pair sets: train and validation from the train pool, test from the test pool.

    One generator seeded with `seed` makes one randperm over the train pool (the first 2*n_train
    indices are the training pairs, the next 2*n_val the validation pairs), then, only when
    n_test > 0, one randperm over the test pool. The test draw comes last, so the training and
    validation pairs of a seed are the same whether or not test pairs are asked for.
    """
    pool = len(source.train_images)
    if n_train < 1:
        raise DataError(f"training pairs must be at least 1, got {n_train}")
    left = (pool - 2 * n_train) // 2
    if n_val is None:
        n_val = max(1, min(left, MAX_DEFAULT_VAL_PAIRS))  # at least one, or the error below
    if pool < 4:
        raise DataError(
            f"the {source.name} train pool has {pool} images, too few for a training and a "
            "validation pair; are the MNIST files complete?"
        )
    if n_val < 0 or n_val > left:
        raise DataError(
            f"{n_train} training + {n_val} validation pairs need {2 * (n_train + n_val)} images; "
            f"the {source.name} train pool has {pool} (at most {pool // 2 - 1} training pairs "
            "leaving one validation pair); ask for fewer pairs"
        )
    if 2 * n_test > len(source.test_images):
        raise DataError(
            f"{n_test} test pairs need {2 * n_test} images; the {source.name} test pool has "
            f"{len(source.test_images)}; ask for at most {len(source.test_images) // 2}"
        )

    g = torch.Generator().manual_seed(seed)
    perm = torch.randperm(pool, generator=g)
    train_ids = perm[: 2 * n_train].view(n_train, 2)
    val_ids = perm[2 * n_train : 2 * (n_train + n_val)].view(n_val, 2)
    train = generate_pairs(source.train_images, source.train_labels, train_ids)
    val = generate_pairs(source.train_images, source.train_labels, val_ids)
    test = None
    if n_test > 0:
        test_ids = torch.randperm(len(source.test_images), generator=g)[: 2 * n_test]
        test = generate_pairs(source.test_images, source.test_labels, test_ids.view(n_test, 2))
    images = train.input
    return Splits(train, val, test, images.mean().item(), images.std().item(), seed)
