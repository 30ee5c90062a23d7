"""Accuracy against size: every complete search trial's validation value and parameter count,
the front of trials no other beats on both, and the smallest trial close to the best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import ClassVar

from optuna.trial import FrozenTrial, TrialState

from search.study.racing import search_trials

NEAR_BEST = 0.002  # "close to the best": within 0.2 point of validation accuracy


@dataclass(frozen=True)
class Point:
    trial: int
    value: float  # validation accuracy
    params: int  # of one net
    feasible: bool  # within the study's budget (always, without one)


def points(trials: Sequence[FrozenTrial], max_params: int | None) -> list[Point]:
    """The complete search trials that recorded their size, in trial order."""
    return [
        Point(
            t.number,
            float(t.value),
            int(t.user_attrs["n_params"]),
            max_params is None or t.user_attrs["n_params"] <= max_params,
        )
        for t in search_trials(trials)
        if t.state == TrialState.COMPLETE and t.value is not None and "n_params" in t.user_attrs
    ]


def over_budget(trials: Sequence[FrozenTrial], max_params: int | None) -> list[int]:
    """The parameter counts of the search trials over the budget (never trained)."""
    if max_params is None:
        return []
    return [
        int(t.user_attrs["n_params"])
        for t in search_trials(trials)
        if t.user_attrs.get("n_params", 0) > max_params
    ]


def front(found: Sequence[Point]) -> list[Point]:
    """The points no other point beats on both counts (at least as accurate and at most as
    large, better on one), smallest first."""
    out: list[Point] = []
    for p in sorted(found, key=lambda p: (p.params, -p.value, p.trial)):
        if not out or p.value > out[-1].value:
            out.append(p)
    return out


def smallest_near_best(found: Sequence[Point], within: float = NEAR_BEST) -> Point | None:
    """The smallest point whose value is within `within` of the best value."""
    if not found:
        return None
    best = max(p.value for p in found)
    return min((p for p in found if p.value >= best - within), key=lambda p: (p.params, p.trial))


@dataclass(frozen=True)
class Tradeoff:
    """A study's accuracy against size: its complete search trials as points, and the sizes of
    the search trials over its budget (never trained)."""

    points: list[Point]
    over_budget: list[int]

    NEAR_BEST: ClassVar[float] = NEAR_BEST

    @classmethod
    def of(cls, trials: Sequence[FrozenTrial], max_params: int | None) -> Tradeoff:
        return cls(points(trials, max_params), over_budget(trials, max_params))

    @property
    def front(self) -> list[Point]:
        return front(self.points)

    @property
    def smallest_near_best(self) -> Point | None:
        return smallest_near_best(self.points)
