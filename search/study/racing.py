"""Racing of finalists: once the search has its total, the best configurations are trained
again on further seeds, every one on the same seeds, and the best mean over those seeds is the
selection.

A trial's value is one training run on one split: the best of many such values is optimistic
(the winner's curse). The race is SMAC's intensification on a fixed grid: the leader starts
as the default configuration, and a challenger replaces it only if it has run on all of the
leader's seeds and its mean over them is higher; the last leader is the selection. The
search's own values choose the finalists and take no part in the race.

Race trials are ordinary trials of the study, enqueued with the finalist's parameters and user
attributes `race_of` (the finalist's trial number), `race_seed` (1..R) and `race_after` (the
search total they follow), so they show in optuna-dashboard and the optuna CLI, are taken by
any worker, and are failed, retried and resumed like every other trial.
"""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from enum import Enum

import numpy as np
import optuna
from optuna.trial import FrozenTrial, TrialState

from search.study.budget import OVER_BUDGET, default_in_budget
from search.study.settings import StudySettings
from search.study.states import FINISHED, TAKEN

RACE_OF, RACE_SEED, RACE_AFTER = "race_of", "race_seed", "race_after"
REUSED_FROM = "reused_from"  # a race cell recorded from an earlier race's identical run


def race_seed(study_seed: int, index: int) -> int:
    """Seed of race seed `index` (1..R): its data split and its training run, the same for every
    finalist; a stream of its own, apart from the trials' and the final evaluation's."""
    return int(np.random.SeedSequence([study_seed, index, 0x7ACE]).generate_state(1)[0])


def is_race(trial: FrozenTrial) -> bool:
    return RACE_OF in trial.user_attrs


def search_trials(trials: Sequence[FrozenTrial]) -> list[FrozenTrial]:
    return [t for t in trials if not is_race(t)]


# A search trial over the parameter budget is never trained (budget.py) and does not count
# toward --trials, so a budgeted search trains as many configurations as it says. Past this
# many of them per trial asked for (a budget that almost nothing the sampler proposes fits),
# they count again, so that such a search still ends.
OVER_BUDGET_DRAWS = 10


def search_counts(trials: Sequence[FrozenTrial], total: int) -> tuple[int, int]:
    """(finished, taken) search trials towards a search of `total`, in one pass: a worker
    counts them under the slot lock before every trial, so on a study of thousands of trials
    this is on every take's path (benchmarks/scale.py)."""
    finished = taken = over = 0
    for t in trials:
        attrs = t.user_attrs
        if RACE_OF in attrs:
            continue
        state = t.state
        if attrs.get(OVER_BUDGET, 0) > 0:
            over += state in FINISHED
            continue
        finished += state in FINISHED
        taken += state in TAKEN
    counted = max(0, over - OVER_BUDGET_DRAWS * total)
    return finished + counted, taken + counted


def race_trials(trials: Sequence[FrozenTrial], after: int) -> list[FrozenTrial]:
    return [t for t in trials if t.user_attrs.get(RACE_AFTER) == after]


def finalists(
    trials: Sequence[FrozenTrial],
    k: int,
    *,
    default_params: dict[str, object] | None,
) -> list[FrozenTrial]:
    """The default's trial (the trial with `default_params`: the default configuration, or the
    shrunk default under a budget), when the study has one and the race has a default (None: a
    cold study), and the k best other complete search trials, one per configuration."""
    complete = [t for t in search_trials(trials) if t.state == TrialState.COMPLETE]
    complete.sort(key=lambda t: (-(t.value or 0.0), t.number))
    out: list[FrozenTrial] = []
    seen: list[dict[str, object]] = []
    for t in complete:
        if t.params == default_params:
            if default_params not in seen:
                out.insert(0, t)
                seen.append(default_params)
        elif t.params not in seen and len(out) - (default_params in seen) < k:
            out.append(t)
            seen.append(t.params)
    return out


def enqueue_race(
    study: optuna.Study,
    trials: Sequence[FrozenTrial],
    *,
    after: int,
    k: int,
    seeds: int,
    default_params: dict[str, object] | None,
) -> int:
    """Queue every finalist on every race seed, seed by seed; returns how many were queued to
    run. A cell (a configuration on a race seed) that an earlier race of the study completed is
    a result already: it is recorded as this race's trial at once, with the earlier value (user
    attribute `reused_from`), not trained again, so extending a study costs its new cells only."""
    chosen = finalists(trials, k, default_params=default_params)
    done: dict[tuple[str, int], FrozenTrial] = {}
    for t in trials:
        if is_race(t) and t.state == TrialState.COMPLETE and t.value is not None:
            done.setdefault((cell_key(t.params), t.user_attrs[RACE_SEED]), t)
    queued = 0
    for index in range(1, seeds + 1):
        for t in chosen:
            attrs = {RACE_OF: t.number, RACE_SEED: index, RACE_AFTER: after}
            earlier = done.get((cell_key(t.params), index))
            if earlier is None:
                study.enqueue_trial(t.params, user_attrs=attrs, skip_if_exists=False)
                queued += 1
                continue
            study.add_trial(
                optuna.trial.create_trial(
                    state=TrialState.COMPLETE,
                    value=earlier.value,
                    params=earlier.params,
                    distributions=earlier.distributions,
                    intermediate_values=earlier.intermediate_values,
                    user_attrs={**earlier.user_attrs, **attrs, REUSED_FROM: earlier.number},
                )
            )
    return queued


def cell_key(params: dict[str, object]) -> str:
    return json.dumps(params, sort_keys=True, default=str)


@dataclass(frozen=True)
class Standing:
    trial: int  # the finalist's search trial
    values: dict[int, float]  # race seed -> validation value, where the run completed
    is_default: bool  # the finalist is the default configuration (the shrunk default)

    @property
    def mean(self) -> float:
        return statistics.fmean(self.values.values()) if self.values else float("nan")


@dataclass(frozen=True)
class Race:
    after: int
    standings: list[Standing]  # in the order the finalists were queued
    selection: Standing | None  # the leader once every race run is in
    complete: bool  # no race trial is waiting or running

    def ranked(self) -> list[Standing]:
        """Best mean first; finalists with no completed race run last."""
        return sorted(self.standings, key=lambda s: -s.mean if s.values else 1.0)


def race_of(study: optuna.Study, trials: Sequence[FrozenTrial] | None = None) -> Race | None:
    """The study's latest race and its selection by intensification; None if it has no race."""
    trials = study.get_trials(deepcopy=False) if trials is None else trials
    runs = [t for t in trials if is_race(t)]
    if not runs:
        return None
    after = max(t.user_attrs[RACE_AFTER] for t in runs)
    runs = race_trials(runs, after)
    by_number = {t.number: t for t in trials}
    default = default_params_of(
        StudySettings.from_user_attrs(study.user_attrs, study=study.study_name)
    )
    order = list(dict.fromkeys(t.user_attrs[RACE_OF] for t in runs))
    standings = [
        Standing(
            trial=number,
            values={
                t.user_attrs[RACE_SEED]: float(t.value)
                for t in runs
                if t.user_attrs[RACE_OF] == number
                and t.state == TrialState.COMPLETE
                and t.value is not None
            },
            is_default=by_number[number].params == default,
        )
        for number in order
    ]
    complete = not any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in runs)
    return Race(after, standings, intensify(standings), complete)


def default_params_of(settings: StudySettings) -> dict[str, object] | None:
    """The recorded parameters of the study's default configuration (the shrunk default under
    its budget); None where nothing of the default's kind fits."""
    found = default_in_budget(settings.max_params)
    return found.recorded if found is not None else None


def intensify(standings: Sequence[Standing]) -> Standing | None:
    """The leader starts as the default (else the first finalist); a challenger replaces it
    only if it ran on every seed the leader ran on and its mean over those seeds is higher."""
    ranked = sorted(standings, key=lambda s: not s.is_default)  # stable: the default first
    leader = next((s for s in ranked if s.values), None)
    for challenger in ranked:
        if leader is None or challenger is leader:
            continue
        shared = leader.values.keys()
        if shared <= challenger.values.keys():
            theirs = statistics.fmean(challenger.values[i] for i in shared)
            if theirs > leader.mean:
                leader = challenger
    return leader


class Step(Enum):
    """What a worker does next (Plan.next_step)."""

    ASK = "ask"  # ask the study for a trial and run it
    SKIP = "skip"  # close the first waiting trial unrun: a search trial beyond the total
    WAIT = "wait"  # the race was just queued, or running trials may fail and be retried
    DONE = "done"


@dataclass(frozen=True)
class Plan:
    """What a run works towards: `trials` finished search trials, then a race of `finalists`
    and the default (`default_params`; None: no default is raced) on `seeds` race seeds;
    finalists = 0 is no race."""

    trials: int
    finalists: int
    seeds: int
    default_params: dict[str, object] | None = None

    @classmethod
    def of(cls, settings: StudySettings, *, trials: int) -> Plan:
        """The plan of a run towards `trials` on a study with these settings."""
        return cls(
            trials=trials,
            finalists=settings.finalists,
            seeds=settings.race_seeds,
            default_params=None if settings.cold_start else default_params_of(settings),
        )

    def search_done(self, trials: Sequence[FrozenTrial]) -> bool:
        return search_counts(trials, self.trials)[0] >= self.trials

    def done(self, trials: Sequence[FrozenTrial]) -> bool:
        if not self.search_done(trials):
            return False
        if self.finalists == 0:
            return True
        runs = race_trials(trials, self.trials)
        if not runs:  # done only if there is nothing to race
            return not finalists(trials, self.finalists, default_params=self.default_params)
        return not any(t.state in (TrialState.WAITING, TrialState.RUNNING) for t in runs)

    def progress(self, trials: Sequence[FrozenTrial]) -> tuple[int, int]:
        """(finished, total) in trials: the search's, then the race's cells (a finalist on a
        seed; a cell counts once however often it was retried)."""
        search = min(self.trials, search_counts(trials, self.trials)[0])
        if self.finalists == 0:
            return search, self.trials
        runs = race_trials(trials, self.trials)
        cells = {(t.user_attrs[RACE_OF], t.user_attrs[RACE_SEED]) for t in runs}
        finished = {
            (t.user_attrs[RACE_OF], t.user_attrs[RACE_SEED]) for t in runs if t.state in FINISHED
        }
        raced = self.finalists + (self.default_params is not None)
        planned = len(cells) if runs else raced * self.seeds
        return search + len(finished), self.trials + planned

    def next_step(self, study: optuna.Study, trials: Sequence[FrozenTrial]) -> Step:
        """What a worker does next, under the slot lock (see Step); queues the race once the
        search has its total."""
        finished, taken = search_counts(trials, self.trials)
        if finished < self.trials:
            return Step.WAIT if taken >= self.trials else Step.ASK
        if self.finalists == 0:
            return Step.DONE
        runs = race_trials(trials, self.trials)
        if not runs:
            queued = enqueue_race(
                study,
                trials,
                after=self.trials,
                k=self.finalists,
                seeds=self.seeds,
                default_params=self.default_params,
            )
            return Step.WAIT if queued else Step.DONE  # the next look sees what was queued
        waiting = [t for t in trials if t.state == TrialState.WAITING]
        if waiting:
            first = min(waiting, key=lambda t: t.number)  # the one study.ask() takes
            return Step.ASK if first.user_attrs.get(RACE_AFTER) == self.trials else Step.SKIP
        return Step.WAIT if any(t.state == TrialState.RUNNING for t in runs) else Step.DONE
