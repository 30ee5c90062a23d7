"""python -m search.run: create or resume a study and run trials until it has --trials finished.

--trials is the study's total, shared by all workers and across re-runs.
"""

# ruff: noqa: E402 (a stop during the imports below must already exit quietly)
from __future__ import annotations

from search.stopping import exit_quietly

exit_quietly("search.run")

import argparse
import sys
from dataclasses import fields
from pathlib import Path
from typing import Any

import optuna

from data import DATASETS
from models import DEFAULT_PRECISION
from search.cli import (
    Parser,
    add_device_option,
    add_precision_option,
    add_setting,
    add_study_options,
    add_workers_option,
    check_workers,
    count,
    heartbeat_seconds,
    one_line_errors,
    parameter_budget,
    positive_float,
    positive_int,
    share,
)
from search.execution import RunRequest, run
from search.machine import CORES
from search.storage import choose_storage
from search.study import Strategy, StudySettings

PROG = "search.run"
# Single-threaded processes, one per core, finish more trials a minute than one process with a
# thread per core (benchmarks/workers.py; docs/performance.md).
DEFAULT_WORKERS = CORES
DEFAULTS = StudySettings()
STRATEGY = Strategy()
MAX_TRIALS = 100_000  # docs/workers.md measures studies of 10,000


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    # fmt: off
    p.add_argument("--trials", type=count(MAX_TRIALS), default=200,
                   help="target total of finished (complete + pruned) trials, 1 to "
                   f"{MAX_TRIALS:,} (default: 200)")
    add_study_options(p)
    p.add_argument("--sampler", choices=Strategy.SAMPLERS, default=STRATEGY.sampler,
                   help="tpe (multivariate), random, qmc or gp (default: %(default)s)")
    p.add_argument("--random-share", type=share, default=None,
                   help="the share of the search trials drawn at random, for a model-based "
                   "sampler (tpe, gp): the first ones (at least 10) and as often among the rest "
                   f"(default: {Strategy.COLD_RANDOM_SHARE} in a cold study, else 0: the first "
                   "10)")
    p.add_argument("--random-draws", choices=Strategy.RANDOM_DRAWS,
                   default=STRATEGY.random_draws,
                   help="what a trial drawn at random draws at random: the whole configuration, "
                   "or its structure (family, widths, layers, batch norm, head, sharing) with "
                   "the training settings (lr, batch size, dropout, alpha, weight decay) from "
                   "the model (default: %(default)s)")
    p.add_argument("--spare-random-draws", action=argparse.BooleanOptionalAction, default=None,
                   help="never prune a trial drawn at random: it trains in full, so the model "
                   "learns what its structure is worth at the end, not at the warm-up "
                   f"(default: on where trials are drawn at random and the pruner is "
                   f"{' or '.join(Strategy.SPARING_PRUNERS)})")
    p.add_argument("--pruner", choices=Strategy.PRUNERS, default=STRATEGY.pruner,
                   help=f"percentile (keeps the top {Strategy.KEEP_SHARE:.0%}% at each epoch), "
                   "median, hyperband or none; the first two keep every trial for a warm-up of "
                   f"{Strategy.WARMUP_SHARE:.0%}% of the epochs (default: %(default)s)")
    add_setting(p, "seed", "seed of the data split, sampler and trials")
    p.add_argument("--timeout", type=positive_float, default=None,
                   help="seconds after which no new trial starts (default: none)")
    p.add_argument("--dataset", choices=DATASETS, default=None,
                   help=f"mnist5k (embedded) or mnist (full MNIST, fetched on first use) "
                   f"(default: {DEFAULTS.dataset}, or the study's)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder of the MNIST IDX files for --dataset mnist, fetched there where "
                        "missing (default: the study's, else ~/.cache/digit-pair-search/mnist)")
    add_device_option(p)
    add_precision_option(p, "every trial of the study trains in (a study setting: auto is "
                         "resolved when the study is created)",
                         f"{DEFAULT_PRECISION}, or the study's")
    add_setting(p, "epochs", "epochs of a one-net trial and of every net of the final evaluation")
    add_setting(p, "trial_nets", "nets a trial trains side by side and is scored on as their "
                "ensemble")
    part = round(100 * StudySettings.TRIAL_EPOCH_SHARE)
    add_setting(p, "trial_epochs", "epochs of each of a trial's nets",
                default=f"{part}%% of --epochs with several nets, all of them with one")
    add_setting(p, "train_pairs", "training pairs")
    add_setting(p, "val_pairs", "validation pairs",
                default="what the train pool has left, up to 1000")
    add_setting(p, "finalists", "the best configurations raced after the search, with the "
                "default one, on further seeds; 0: no race")
    add_setting(p, "race_seeds", "seeds of the race")
    add_workers_option(p, default=None,
                       help=f"worker processes on this machine (default: {DEFAULT_WORKERS}, one "
                       "per core; 1 on SQLite)")
    p.add_argument("--threads", type=positive_int, default=None,
                   help="torch threads per worker (default: cores / workers)")
    p.add_argument("--create-only", action="store_true",
                   help="create (or check) the study and exit: the one-shot step before workers "
                   "start")
    p.add_argument("--cold-start", action="store_const", const=True, default=None,
                   help="search with no hint: Config's defaults are neither queued first nor "
                   "raced (a cold study; a study setting; default: both, a warm study)")
    p.add_argument("--max-params", type=parameter_budget, default=None,
                   help="a parameter budget: a configuration whose net has more parameters is "
                   "never trained nor counted in --trials, and the default configuration, "
                   "where it is over, is raced shrunk to fit; none: no budget (a study "
                   "setting; default: none, or the study's)")
    p.add_argument("--no-queued-defaults", "--no-baselines", action="store_true",
                   help="do not queue Config's default configuration of each family as a new "
                   "warm study's first trials (queued by default; --no-baselines is its old "
                   "name)")
    p.add_argument("--heartbeat", type=heartbeat_seconds, default=20,
                   help="seconds between heartbeats on RDB storages; a trial silent for three "
                   "is failed and retried (default: %(default)s)")
    # fmt: on
    return p


def given_settings(args: argparse.Namespace) -> dict[str, Any]:
    """The study settings as the flags give them (None: not given), one per StudySettings
    field: each setting's flag has its name."""
    given = {f.name: getattr(args, f.name) for f in fields(StudySettings)}
    return given | {"data_dir": str(args.data_dir) if args.data_dir else None}


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    strategy = Strategy(**{f.name: getattr(args, f.name) for f in fields(Strategy)})
    refused = strategy.refused()
    if refused:
        parser.error(refused)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    workers = args.workers or DEFAULT_WORKERS
    check_workers(PROG, workers)
    if args.threads is not None:
        check_workers(PROG, args.threads, "--threads")
    with one_line_errors(PROG):
        choice = choose_storage(
            args.study, args.storage, workers=workers, workers_given=args.workers is not None
        )
        request = RunRequest(
            study=args.study,
            storage=choice,
            given=given_settings(args),
            trials=args.trials,
            strategy=strategy,
            device=args.device,
            threads=args.threads or max(1, CORES // choice.workers),
            heartbeat=args.heartbeat,
            timeout=args.timeout,
            create_only=args.create_only,
            queue_defaults=not args.no_queued_defaults,
        )
        return run(request)


if __name__ == "__main__":
    sys.exit(main())
