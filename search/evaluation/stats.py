"""Summary statistics over rounds: mean, std and 95% intervals (Student t)."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Summary:
    mean: float
    std: float  # sample standard deviation (ddof = 1); 0 for one round
    low: float  # 95% confidence interval of the mean
    high: float
    n: int


def summarize(values: Sequence[float]) -> Summary:
    n = len(values)
    mean = sum(values) / n
    if n < 2:
        return Summary(mean, 0.0, mean, mean, n)
    std = math.sqrt(sum((v - mean) ** 2 for v in values) / (n - 1))
    from scipy import stats  # here: its import is a second of every command's and worker's start

    half = float(stats.t.ppf(0.975, n - 1)) * std / math.sqrt(n)
    return Summary(mean, std, mean - half, mean + half, n)


def paired(a: Sequence[float], b: Sequence[float]) -> Summary:
    """a - b, round by round: the rounds share their data, so the difference is paired."""
    return summarize([x - y for x, y in zip(a, b, strict=True)])
