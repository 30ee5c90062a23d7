"""Accuracy against size: every complete search trial's validation value and parameter count,
the front of trials no other beats on both, and the smallest trial close to the best."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

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
