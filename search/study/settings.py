"""What a study fixes for its whole life: the data it is searched on and the epoch budget.

One frozen type with the one set of defaults; it is stored as the study's user attributes when
the study is created, read back by every later run, worker and final evaluation, and a re-run's
flags are checked against it here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import asdict, dataclass, fields, replace
from typing import Any, ClassVar

import optuna

from data import DATASETS
from models import AUTO_PRECISION, MAX_ENSEMBLE, Config
from search.errors import UsageError


@dataclass(frozen=True)
class StudySettings:
    dataset: str = "mnist5k"
    data_dir: str | None = None  # the folder of the IDX files, for dataset "mnist"
    seed: int = 0  # the data split, the samplers and every trial derive from it
    epochs: int = Config.epochs  # of a one-net trial and of every final-evaluation net
    # A trial (search and race) trains `trial_nets` nets side by side for `trial_epochs` each
    # and is scored as their ensemble. Two nets make a trial's value less noisy, but the main
    # job then took longer for no better gain (docs/search.md, benchmarks/noise.py), so one net
    # is the default. None: all of `epochs` for one net, TRIAL_EPOCH_SHARE of them for several.
    trial_nets: int = 1
    trial_epochs: int | None = None
    train_pairs: int = 1000
    val_pairs: int | None = None  # None: what the train pool has left (up to 1000)
    # The race after the search (search.study.racing): the best `finalists` configurations and the
    # default one, each trained again on `race_seeds` further seeds; 0 finalists is no race.
    finalists: int = 5
    race_seeds: int = 5
    # No hint from earlier measurement: Config's defaults are neither queued as the first
    # trials nor raced, so the search shows what it finds from nothing (a cold study).
    cold_start: bool = False
    # A parameter budget: a configuration whose one net has more parameters is never trained
    # (search.study.budget); None: no budget.
    max_params: int | None = None
    # The arithmetic every trial trains in (models.precision): a new study resolves --precision
    # auto on the machine that creates it; a study stored before precision was a setting
    # trained in fp32.
    precision: str = "fp32"

    # Several nets a trial train this share of `epochs` each (docs/search.md,
    # benchmarks/noise.py).
    TRIAL_EPOCH_SHARE: ClassVar[float] = 0.6
    # What each setting's value must be, and in words (RANGES, below).
    RANGES: ClassVar[dict[str, tuple[Callable[[Any], bool], str]]]
    # --max-params none, said: no budget. A flag left out is None; this one is a setting given.
    NO_BUDGET: ClassVar[int] = 0

    def to_user_attrs(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_user_attrs(cls, attrs: Mapping[str, Any], *, study: str) -> StudySettings:
        """The settings stored with a study; one a study lacks takes its default."""
        values = {f.name: attrs[f.name] for f in fields(cls) if f.name in attrs}
        for name, value in values.items():
            kind = KINDS[name]
            malformed = not (isinstance(value, kind) or (value is None and name in OPTIONAL))
            if kind is int and isinstance(value, bool):
                malformed = True  # True is an int to Python, not a count to a study
            if malformed:
                raise UsageError(
                    f"study {study!r} has a malformed {name} setting ({value!r}): "
                    "was it made by search.run?"
                )
            if value is not None and name in RANGES and not RANGES[name][0](value):
                raise UsageError(
                    f"study {study!r} has {name} {value!r} stored, but {flag(name)} must be "
                    f"{RANGES[name][1]}: was it made by search.run? Start a new study with --study"
                )
        return cls(**values).resolved()

    @property
    def trial_budget(self) -> int:
        """The epochs each of a trial's nets trains: `trial_epochs` as given, else the whole
        budget for one net, or TRIAL_EPOCH_SHARE of it for several."""
        if self.trial_epochs is not None:
            return self.trial_epochs
        share = 1.0 if self.trial_nets == 1 else self.TRIAL_EPOCH_SHARE
        return max(1, round(share * self.epochs))

    def resolved(self) -> StudySettings:
        """With `trial_epochs` filled in, as a study stores it."""
        return replace(self, trial_epochs=self.trial_budget)


# Everything below derives from StudySettings' fields: a new setting is one line above.
KINDS: dict[str, type] = {
    f.name: {"str": str, "int": int, "bool": bool}[str(f.type).split(" | ")[0]]
    for f in fields(StudySettings)
}
OPTIONAL = tuple(f.name for f in fields(StudySettings) if "None" in str(f.type))
FLAGS = tuple(name for name, kind in KINDS.items() if kind is bool)  # on or off, no value
# A re-run's flag that disagrees with one of these is refused; data_dir may differ between runs
# (a moved folder).
CHECKED = tuple(name for name in KINDS if name != "data_dir")


# What a stored setting must be, as its flag is checked (search.cli's types): a study read back
# is refused in one line when it is out of range, before anything is run or written. Every
# count has an upper bound that fits a machine: MNIST's pools bound the pairs, and a race of
# MAX_FINALISTS x MAX_RACE_SEEDS trials is queued in seconds.
MAX_EPOCHS = 1000
MAX_PAIRS = 30_000  # MNIST-train's 60,000 images make 30,000 pairs
MAX_FINALISTS = 50
MAX_RACE_SEEDS = 100
TRAINED_PRECISIONS = ("fp32", "bf16")  # what a study stores: --precision auto resolved


def between(low: int, high: int, unit: str = "") -> tuple[Callable[[Any], bool], str]:
    return (lambda v: low <= v <= high), f"{low} to {high:,}{unit}"


RANGES: dict[str, tuple[Callable[[Any], bool], str]] = {
    "dataset": (lambda v: v in DATASETS, f"one of {', '.join(DATASETS)}"),
    "seed": (lambda v: 0 <= v < 2**32, f"an integer from 0 to {2**32 - 1}"),
    "epochs": between(1, MAX_EPOCHS),
    "trial_nets": between(1, MAX_ENSEMBLE, " nets"),
    "trial_epochs": between(1, MAX_EPOCHS),
    "train_pairs": between(2, MAX_PAIRS, " pairs"),
    "val_pairs": between(1, MAX_PAIRS, " pairs"),
    "finalists": between(0, MAX_FINALISTS),
    "race_seeds": between(1, MAX_RACE_SEEDS),
    "max_params": (lambda v: v >= 1, "a positive integer"),
    "precision": (lambda v: v in TRAINED_PRECISIONS, " or ".join(TRAINED_PRECISIONS)),
}


StudySettings.RANGES = RANGES


def check_direction(study: optuna.Study) -> None:
    """A digit-pair study maximizes one value (the validation accuracy); any other study is
    refused in one line."""
    if study.directions != [optuna.study.StudyDirection.MAXIMIZE]:
        shown = ", ".join(d.name.lower() for d in study.directions)
        raise UsageError(
            f"study {study.study_name!r} is not a digit-pair study (directions: {shown}); "
            "choose another --study"
        )


def flag(name: str) -> str:
    """The flag of search.run that sets setting `name`."""
    return "--" + name.replace("_", "-")


NO_BUDGET = StudySettings.NO_BUDGET


def shown(value: Any) -> str:
    return "none" if value is None else str(value)


def settle(given: Mapping[str, Any], stored: StudySettings | None, *, study: str) -> StudySettings:
    """The settings of a run: a new study's are the given flags over the defaults; an existing
    study's are its own, and a given flag that disagrees with them is refused (--max-params
    none on a study with a budget too)."""
    given = {name: value for name, value in given.items() if value is not None}
    if given.get("max_params") == NO_BUDGET:
        given["max_params"] = None
    if stored is not None and given.get("precision") == AUTO_PRECISION:
        del given["precision"]  # auto on an existing study: the study's own
    if stored is None:
        return replace(StudySettings(), **given).resolved()
    for name in CHECKED:
        if name in given and given[name] != getattr(stored, name):
            how = (
                f"without {flag(name)}"
                if name in FLAGS
                else f"with {flag(name)} {shown(getattr(stored, name))}, not {shown(given[name])}"
            )
            raise UsageError(
                f"study {study!r} was created {how}; drop {flag(name)} or start a new study "
                "with --study"
            )
    if "data_dir" in given:
        return replace(stored, data_dir=given["data_dir"])
    return stored
