from __future__ import annotations

import math

import pytest

from search.evaluation.stats import paired, summarize


def test_summarize_gives_the_student_t_interval() -> None:
    s = summarize([0.97, 0.98, 0.99])
    assert s.mean == pytest.approx(0.98) and s.std == pytest.approx(0.01) and s.n == 3
    half = 4.302652729911275 * 0.01 / math.sqrt(3)  # t(0.975, 2 degrees of freedom)
    assert (s.low, s.high) == (pytest.approx(0.98 - half), pytest.approx(0.98 + half))


def test_one_round_has_no_spread() -> None:
    s = summarize([0.9])
    assert (s.mean, s.std, s.low, s.high, s.n) == (0.9, 0.0, 0.9, 0.9, 1)


def test_paired_is_the_summary_of_round_by_round_differences() -> None:
    d = paired([0.99, 0.98, 0.97], [0.98, 0.98, 0.95])
    assert d.mean == pytest.approx(0.01) and d.std == pytest.approx(0.01)
    with pytest.raises(ValueError):
        paired([0.9], [0.9, 0.8])  # rounds must match one to one
