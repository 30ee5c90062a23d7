"""python -m search.final_eval: retrain the best (or a named) trial's config over random rounds
and report mean +- std test accuracy, with an ablation of weight sharing x auxiliary loss.

The test pairs are read here and only here.
"""

# ruff: noqa: E402 (a stop during the imports below must already exit quietly)
from __future__ import annotations

from search.interrupt import exit_quietly

exit_quietly("search.final_eval")

import platform
import sys
import time
from dataclasses import replace
from pathlib import Path

import optuna
import torch

from data import load_source
from models import build_model, count_parameters, resolve_device
from search.cli import (
    FAULTS,
    USER_ERRORS,
    Parser,
    add_device_option,
    add_study_options,
    add_workers_option,
    check_workers,
    ensemble_size,
    fail,
    fail_on_full_disk,
    non_negative_int,
    positive_int,
    seed_value,
)
from search.errors import UsageError
from search.evaluation import (
    SELECTED,
    TEST_PAIRS,
    EvalResult,
    Job,
    ModelFile,
    ensemble_gain,
    evaluate_rounds,
    first_nets,
    gain_over_default,
    one_net_gain,
    publish,
    round_seed,
    summarize_variants,
    tables,
    variants,
)
from search.interrupt import held, raise_on_interrupt
from search.machine import CORES
from search.paths import model_path
from search.storage import find_storage, mask_argv, open_storage
from search.study import StudySettings, pick_trial, replay

PROG = "search.final_eval"
DEFAULT_ENSEMBLE = 3


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    # fmt: off
    add_study_options(p)
    p.add_argument("--trial", type=non_negative_int, default=None,
                   help="trial number to evaluate (default: the best trial)")
    p.add_argument("--rounds", type=positive_int, default=10,
                   help="rounds, each with new data and a new initialization (default: 10)")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seed from which every round's seed is derived (default: 0)")
    add_workers_option(p, default=CORES,
                       help=f"parallel processes, one thread each (default: {CORES}, the cores)")
    add_device_option(p)
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder of the MNIST IDX files (default: the one the study used, "
                        "else the cache)")
    p.add_argument("--ensemble", type=ensemble_size, default=DEFAULT_ENSEMBLE,
                   help="nets the selection is trained as, their posteriors averaged; with more "
                        "than one its first net is also scored alone, to show the search's "
                        f"own share of the gain (default: {DEFAULT_ENSEMBLE})")
    p.add_argument("--no-ablation", action="store_true",
                   help="evaluate the selected configuration only (default: with ablation)")
    # fmt: on
    return p


def load(study_name: str, storage_flag: str | None) -> optuna.Study:
    spec = find_storage(study_name, storage_flag)
    storage = open_storage(spec, create=False)
    try:
        return optuna.load_study(study_name=study_name, storage=storage)
    except KeyError:
        names = [s.study_name for s in optuna.get_all_study_summaries(storage)]
        raise UsageError(
            f"no study {study_name!r} in {spec.shown} (it has: {', '.join(names) or 'none'})"
        ) from None


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_workers(PROG, args.workers)
    try:
        raise_on_interrupt()  # from here a stop is a KeyboardInterrupt, caught below
        resolve_device(args.device)
        study = load(args.study, args.storage)
        trial, why = pick_trial(study, args.trial)
        settings = StudySettings.from_user_attrs(study.user_attrs, study=args.study)
        if args.data_dir is not None:
            settings = replace(settings, data_dir=str(args.data_dir))
        configs = variants(
            replay(trial, epochs=settings.epochs),
            ablation=not args.no_ablation,
            ensemble=args.ensemble,
        )
        seeds = [round_seed(args.seed, r) for r in range(args.rounds)]
        first = first_nets(configs)
        jobs = [
            Job(name, c, r, seeds[r], settings.train_pairs, args.device,
                first_net=first.get(name),
                keep=name == SELECTED and r == 0)  # round 0: no round is picked for its luck
            for r in range(args.rounds)
            for name, c in configs.items()
            if name not in first.values()
        ]  # fmt: skip
        # Check the data once here: a bad --data-dir ends in one line before any work starts.
        load_source(settings.dataset, Path(settings.data_dir) if settings.data_dir else None)
        val = 100 * (trial.value or 0)
        print(f"study {args.study!r}: {why}")
        nets = f" as {args.ensemble} nets" if args.ensemble > 1 else ""
        print(
            f"trial #{trial.number}{nets} (search validation {val:.2f} %): "
            f"{len(configs)} variant(s) x {args.rounds} rounds, {args.workers} worker(s)"
        )
        start = time.time()
        done = evaluate_rounds(
            jobs, dataset=settings.dataset, data_dir=settings.data_dir, workers=args.workers
        )
    except USER_ERRORS as e:
        fail(PROG, e)
    except FAULTS as e:
        fail(PROG, e, status=1)
    except OSError as e:
        fail_on_full_disk(PROG, e)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130

    rows, kept = done.rows, done.kept
    assert kept is not None, "round 0 of the selection keeps its nets"
    selected = configs[SELECTED]
    result = EvalResult(
        study=args.study,
        trial=trial.number,
        selection=why,
        validation_accuracy=trial.value,
        variants=configs,
        seed=args.seed,
        round_seeds=seeds,
        dataset=settings.dataset,
        train_pairs=settings.train_pairs,
        test_pairs=TEST_PAIRS,
        summary=summarize_variants(rows, configs),
        gain=gain_over_default(rows),
        one_net_gain=one_net_gain(rows),
        ensemble_gain=ensemble_gain(rows),
        rounds=rows,
        wall_seconds=time.time() - start,
        command=" ".join([PROG, *mask_argv(argv if argv is not None else sys.argv[1:])]),
        versions={
            "python": platform.python_version(),
            "torch": torch.__version__,
            "optuna": optuna.__version__,
        },
        model=ModelFile(
            path=str(model_path(args.study)),
            round=kept.round,
            seed=kept.seed,
            test_accuracy=kept.test_accuracy,
            nets=selected.ensemble,
            parameters=count_parameters(build_model(selected)),
        ),
    )
    print(tables(result))
    with held():  # the files, the artifacts, the attribute and the note, all or none
        json_path, html_path = publish(study, result, kept)
    print(
        f"\nsaved {result.model.path}, {json_path} and {html_path}; "
        f"attached to study {args.study!r}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
