"""The objective: train a sampled config on the training pairs, report validation accuracy."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from data import Source, Splits, load_source, make_splits
from models import Config, Diverged, EpochStats, TrainResult, parameter_count, train
from search.study.budget import CONSTRAINT, OVER_BUDGET
from search.study.racing import RACE_SEED, race_seed
from search.study.settings import StudySettings
from search.study.space import suggest_config
from search.study.strategies import mark_drawn_at_random


class WorkerStopped(Exception):
    """The worker was asked to stop (SIGTERM or Ctrl-C) in the middle of a trial."""


class SearchData:
    """A study's train pool, loaded once per process, and the splits it draws from it: the
    study's own (its seed) and the race's. It never holds a test image, so no test pair can
    be drawn during a search."""

    def __init__(self, source: Source, settings: StudySettings) -> None:
        if len(source.test_images):
            raise ValueError("the search must not hold test pairs or the images they come from")
        self.source, self.settings = source, settings
        self.drawn: dict[int, Splits] = {}

    @classmethod
    def of(cls, source: Source, settings: StudySettings) -> SearchData:
        """The train pool of `source`; its test pool is left behind."""
        empty = source.test_images[:0], source.test_labels[:0]
        return cls(replace(source, test_images=empty[0], test_labels=empty[1]), settings)

    @classmethod
    def load(cls, settings: StudySettings) -> SearchData:
        data_dir = Path(settings.data_dir) if settings.data_dir else None
        return cls.of(load_source(settings.dataset, data_dir), settings)

    def splits(self, seed: int | None = None) -> Splits:
        """Training and validation pairs drawn with `seed` (the study's by default)."""
        seed = self.settings.seed if seed is None else seed
        if seed not in self.drawn:
            self.drawn[seed] = make_splits(
                self.source,
                seed=seed,
                n_train=self.settings.train_pairs,
                n_val=self.settings.val_pairs,
            )
        return self.drawn[seed]


def trial_value(stats: EpochStats) -> float:
    """A trial's value at an epoch: the comparison accuracy over every ordered pair of the
    validation images where the model allows it (a siamese net comparing its digit
    predictions), else over the validation pairs. Both estimate the same accuracy; the first
    has no pairing noise (benchmarks/noise.py)."""
    return stats.all_pairs.get("val", stats.accuracy["val"])


def trial_seed(study_seed: int, trial_number: int) -> int:
    return study_seed * 100_003 + trial_number


class Objective:
    """Trains a trial's configuration on the study's data. A search trial uses the study's
    split and its own seed, and may be pruned; a race trial (user attribute race_seed) uses
    that race seed's split and training seed, shared by every finalist, and runs to the end."""

    def __init__(
        self,
        data: SearchData,
        *,
        device: torch.device,
        threads: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.data = data
        self.device = device
        self.threads = threads
        self.stop = stop or threading.Event()

    def __call__(self, trial: optuna.Trial) -> float:
        settings = self.data.settings
        config = suggest_config(trial, epochs=settings.trial_budget)
        mark_drawn_at_random(trial)
        race = trial.user_attrs.get(RACE_SEED)
        if race is None:
            seed, splits = trial_seed(settings.seed, trial.number), self.data.splits()
        else:
            seed = race_seed(settings.seed, race)
            splits = self.data.splits(seed)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("precision", settings.precision)
        params = parameter_count(config)
        trial.set_user_attr("n_params", params)
        if settings.max_params is not None:
            # Known before any training: an infeasible trial is recorded and never trained.
            over = params - settings.max_params
            trial.set_constraint(CONSTRAINT, over)
            trial.set_user_attr(OVER_BUDGET, over)
            if over > 0:
                raise optuna.TrialPruned(
                    f"over the budget: {params:,} parameters > {settings.max_params:,}"
                )
        epoch_seconds: list[float] = []

        def on_epoch(stats: EpochStats) -> None:
            epoch_seconds.append(stats.seconds)
            trial.report(trial_value(stats), stats.epoch)
            if self.stop.is_set():
                raise WorkerStopped(f"worker stopped during epoch {stats.epoch}")
            if race is None and trial.should_prune():
                trial.set_user_attr("seconds_per_epoch", sum(epoch_seconds) / len(epoch_seconds))
                raise optuna.TrialPruned(f"pruned after epoch {stats.epoch}")

        try:
            result = self.fit(replace(config, ensemble=settings.trial_nets), splits, seed, on_epoch)
        except Diverged as e:
            # Pruned, not failed: the configuration is bad, and the study should count it and
            # learn from it (a failed trial is ignored by the samplers and re-sampled).
            trial.set_user_attr("diverged", str(e))
            raise optuna.TrialPruned(f"diverged: {e}") from None
        last = result.history[-1]
        trial.set_user_attr("seconds_per_epoch", sum(epoch_seconds) / len(epoch_seconds))
        trial.set_user_attr("train_accuracy", result.train_accuracy)
        trial.set_user_attr("val_pairs_accuracy", last.accuracy["val"])
        trial.set_user_attr("value_over", "all pairs" if "val" in last.all_pairs else "pairs")
        return trial_value(last)

    def fit(
        self, config: Config, splits: Splits, seed: int, on_epoch: Callable[[EpochStats], None]
    ) -> TrainResult:
        """Train `config` on the split's training pairs, scoring the validation images every
        epoch (`on_epoch` reports, prunes and stops). benchmarks/scale.py puts a synthetic
        learning curve here, so that thousands of trials run through the rest in minutes."""
        return train(
            config,
            splits.train,
            {"val": splits.val},
            mean=splits.mean,
            std=splits.std,
            seed=seed,
            device=self.device,
            threads=self.threads,
            on_epoch=on_epoch,
            all_pairs=True,
            precision=self.data.settings.precision,
        )
