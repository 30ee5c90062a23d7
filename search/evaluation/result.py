"""A final evaluation's result: one typed value, written as JSON and rendered as text, HTML
and a study note."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

from models import Config
from search.evaluation.ablation import DEFAULT, DEFAULT_ONE_NET, ONE_NET, SELECTION
from search.evaluation.rounds import RoundResult
from search.evaluation.stats import Summary, paired, summarize
from search.study import Point, Tradeoff


@dataclass(frozen=True)
class VariantSummary:
    train: Summary
    test: Summary
    diff: Summary | None  # paired test difference to the variant `versus`
    versus: str | None  # the selection, or the selection as one net for a one-net variant
    seconds: float


@dataclass(frozen=True)
class ModelFile:
    """The selection as trained in round 0, kept as a file (models.load_model reads it)."""

    path: str
    round: int
    seed: int  # the round's seed: its training data, initialization and test pairs
    test_accuracy: float  # that round's, on its test pairs
    nets: int
    parameters: int  # of one net


@dataclass(frozen=True)
class EvalResult:
    study: str
    trial: int
    selection: str  # which trial was taken and why
    validation_accuracy: float | None
    variants: dict[str, Config]  # the selected configuration first
    seed: int
    round_seeds: list[int]
    dataset: str
    train_pairs: int
    test_pairs: int
    summary: dict[str, VariantSummary]
    gain: Summary  # selection - default configuration, both as ensemble.nets, paired over rounds
    one_net_gain: Summary | None  # the same, both as one net (their ensembles' first nets)
    ensemble_gain: Summary | None  # the selection - the selection as one net
    rounds: list[RoundResult]
    wall_seconds: float
    command: str
    versions: dict[str, str]
    model: ModelFile
    # Accuracy against size: the study's budget (None: none), what the default variant is and
    # why, every complete search trial's (value, size) and the sizes of those over the budget.
    max_params: int | None = None
    precision: str = "fp32"  # the arithmetic every net trained in (models.precision)
    default_is: str = "the default configuration"  # or the shrunk default, in words
    points: list[Point] = field(default_factory=list)
    over_budget: list[int] = field(default_factory=list)

    @property
    def front(self) -> list[Point]:
        """The search trials no other beats on both validation accuracy and size."""
        return Tradeoff(self.points, self.over_budget).front

    @property
    def smallest_near_best(self) -> Point | None:
        return Tradeoff(self.points, self.over_budget).smallest_near_best

    @property
    def config(self) -> Config:
        return self.variants[SELECTION]

    @property
    def default_variant(self) -> str:
        """The variant that is the default configuration: its own, or the selection itself."""
        return DEFAULT if DEFAULT in self.variants else SELECTION

    def runs(self, variant: str) -> list[RoundResult]:
        """A variant's rounds in round order."""
        return by_variant(self.rounds).get(variant, [])

    def to_json(self) -> dict[str, Any]:
        return {
            "study": self.study,
            "trial": self.trial,
            "selection": self.selection,
            "validation_accuracy": self.validation_accuracy,
            "config": self.config.to_dict(),
            "variants": {name: c.to_dict() for name, c in self.variants.items()},
            "seed": self.seed,
            "round_seeds": self.round_seeds,
            "rounds_requested": len(self.round_seeds),
            "dataset": self.dataset,
            "train_pairs": self.train_pairs,
            "test_pairs": self.test_pairs,
            "summary": {name: asdict(s) for name, s in self.summary.items()},
            "default_variant": self.default_variant,
            "gain_over_default": asdict(self.gain),
            "one_net_gain_over_default": asdict(self.one_net_gain) if self.one_net_gain else None,
            "ensemble_gain": asdict(self.ensemble_gain) if self.ensemble_gain else None,
            "rounds": [asdict(r) for r in self.rounds],
            "wall_seconds": self.wall_seconds,
            "command": self.command,
            "versions": self.versions,
            "model": asdict(self.model),
            "max_params": self.max_params,
            "precision": self.precision,
            "default_is": self.default_is,
            "tradeoff": {
                "points": [asdict(p) for p in self.points],
                "front": [p.trial for p in self.front],
                "smallest_near_best": self.smallest_near_best and self.smallest_near_best.trial,
                "over_budget": self.over_budget,
            },
        }


def summarize_variants(
    rows: Sequence[RoundResult], configs: Mapping[str, Config]
) -> dict[str, VariantSummary]:
    """Per variant: train and test accuracy over rounds, and the paired test difference (the
    rounds share their data, so the difference is paired) to the selection, or,
    where the selection is an ensemble, a one-net variant's to the selection as one net, so
    that every comparison is like with like."""
    grouped = by_variant(rows)
    by = {n: grouped.get(n, []) for n in configs}
    out = {}
    for name, runs in by.items():
        test = [r.test_accuracy for r in runs]
        versus = None if name == SELECTION else SELECTION
        if ONE_NET in by and configs[name].ensemble == 1 and name != ONE_NET:
            versus = ONE_NET
        out[name] = VariantSummary(
            train=summarize([r.train_accuracy for r in runs]),
            test=summarize(test),
            diff=None if versus is None else paired(test, [r.test_accuracy for r in by[versus]]),
            versus=versus,
            seconds=sum(r.seconds for r in runs),
        )
    return out


def by_variant(rows: Sequence[RoundResult]) -> dict[str, list[RoundResult]]:
    """Each variant's rounds, in round order."""
    out: dict[str, list[RoundResult]] = {}
    for r in sorted(rows, key=lambda r: r.round):
        out.setdefault(r.variant, []).append(r)
    return out


def test_accuracies(rows: Sequence[RoundResult], name: str) -> list[float]:
    return [r.test_accuracy for r in by_variant(rows).get(name, [])]


def gain_over_default(rows: Sequence[RoundResult]) -> Summary:
    """Test accuracy of the selection minus the default configuration's, trained alike (the
    same number of nets), round by round; zero when the selection is the default
    configuration."""
    default = DEFAULT if DEFAULT in {r.variant for r in rows} else SELECTION
    return paired(test_accuracies(rows, SELECTION), test_accuracies(rows, default))


def one_net_gain(rows: Sequence[RoundResult]) -> Summary | None:
    """With an ensemble: the same gain one net against one net (each ensemble's first net),
    round by round; None without an ensemble, or when the selection is the default."""
    names = {r.variant for r in rows}
    if ONE_NET not in names or DEFAULT_ONE_NET not in names:
        return None
    return paired(test_accuracies(rows, ONE_NET), test_accuracies(rows, DEFAULT_ONE_NET))


def ensemble_gain(rows: Sequence[RoundResult]) -> Summary | None:
    """What the ensemble adds to the selection: its nets together minus its first net alone,
    round by round; None without an ensemble."""
    if ONE_NET not in {r.variant for r in rows}:
        return None
    return paired(test_accuracies(rows, SELECTION), test_accuracies(rows, ONE_NET))
