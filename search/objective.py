"""The objective: train a sampled config on the training pairs, report validation accuracy."""

from __future__ import annotations

import threading
from pathlib import Path

import optuna
import torch

from data import Splits, load_source, make_splits
from models import Diverged, EpochStats, build_model, count_parameters, train
from search.settings import StudySettings
from search.space import suggest_config


class WorkerStopped(Exception):
    """The worker was asked to stop (SIGTERM or Ctrl-C) in the middle of a trial."""


def search_splits(settings: StudySettings) -> Splits:
    """A study's training and validation pairs; its test pairs are not even drawn."""
    data_dir = Path(settings.data_dir) if settings.data_dir else None
    return make_splits(
        load_source(settings.dataset, data_dir),
        seed=settings.seed,
        n_train=settings.train_pairs,
        n_val=settings.val_pairs,
    )


def trial_value(stats: EpochStats) -> float:
    """A trial's value at an epoch: the comparison accuracy over every ordered pair of the
    validation images where the model allows it (a siamese net comparing its digit
    predictions), else over the validation pairs. Both estimate the same accuracy; the first
    has no pairing noise (benchmarks/noise.py)."""
    return stats.all_pairs.get("val", stats.accuracy["val"])


def trial_seed(study_seed: int, trial_number: int) -> int:
    return study_seed * 100_003 + trial_number


class Objective:
    """Holds the data loaded once per process; the test pairs are never given to it."""

    def __init__(
        self,
        splits: Splits,
        *,
        epochs: int,
        seed: int,
        device: torch.device,
        threads: int | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        if splits.test is not None:
            raise ValueError("the objective must not hold test pairs")
        self.splits = splits
        self.epochs = epochs
        self.seed = seed
        self.device = device
        self.threads = threads
        self.stop = stop or threading.Event()

    def __call__(self, trial: optuna.Trial) -> float:
        config = suggest_config(trial, epochs=self.epochs)
        seed = trial_seed(self.seed, trial.number)
        trial.set_user_attr("seed", seed)
        trial.set_user_attr("n_params", count_parameters(build_model(config)))
        epoch_seconds: list[float] = []

        def on_epoch(stats: EpochStats) -> None:
            epoch_seconds.append(stats.seconds)
            trial.report(trial_value(stats), stats.epoch)
            if self.stop.is_set():
                raise WorkerStopped(f"worker stopped during epoch {stats.epoch}")
            if trial.should_prune():
                trial.set_user_attr("seconds_per_epoch", sum(epoch_seconds) / len(epoch_seconds))
                raise optuna.TrialPruned(f"pruned after epoch {stats.epoch}")

        try:
            result = train(
                config,
                self.splits.train,
                {"val": self.splits.val},
                mean=self.splits.mean,
                std=self.splits.std,
                seed=seed,
                device=self.device,
                threads=self.threads,
                on_epoch=on_epoch,
                all_pairs=True,
            )
        except Diverged as e:
            # Pruned, not failed: the configuration is bad, and the study should count it and
            # learn from it (a failed trial is ignored by the samplers and re-sampled).
            trial.set_user_attr("diverged", str(e))
            raise optuna.TrialPruned(f"diverged: {e}") from None
        trial.set_user_attr("seconds_per_epoch", sum(epoch_seconds) / len(epoch_seconds))
        last = result.history[-1]
        trial.set_user_attr("train_accuracy", result.train_accuracy)
        trial.set_user_attr("val_pairs_accuracy", last.accuracy["val"])
        trial.set_user_attr("value_over", "all pairs" if "val" in last.all_pairs else "pairs")
        return trial_value(last)
