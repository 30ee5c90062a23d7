"""Accuracy measures of a trained model: pure functions of its outputs and the labels."""

from __future__ import annotations

import torch

LESS_EQUAL = torch.ones(10, 10).triu()  # [i, j] = 1 where digit i <= digit j
ROWS = 1024


def all_pairs_accuracy(
    first: torch.Tensor,  # [M, 10] digit posteriors of M images in the first position
    second: torch.Tensor,  # [M, 10] the same images' posteriors in the second position
    labels: torch.Tensor,  # [M] their digit classes
) -> float:
    """Comparison accuracy over every ordered pair (i, j), i != j, of M images, for a model
    that predicts "first <= second" when P(a <= b) = sum over k <= l of pa_k pb_l is above 1/2.

    Exact given the posteriors: no pairing is drawn, so the value has no pairing noise, and
    the M (M - 1) pairs use every image M - 1 times in each position.
    """
    upper = LESS_EQUAL.to(first.device, first.dtype)
    cumulative = upper @ second.T  # [10, M]: P(k <= second image's digit) for each k
    m, hits = len(labels), 0
    for start in range(0, m, ROWS):  # [ROWS, M] at a time: 40 MB of float32 on full MNIST
        rows = slice(start, start + ROWS)
        predicted = first[rows] @ cumulative > 0.5
        right = predicted == (labels[rows, None] <= labels[None, :])
        hits += int(right.sum()) - int(right.diagonal(offset=start).sum())
    return hits / (m * (m - 1))
