"""python -m search.final_eval: retrain the selection (or a named trial) over random rounds
beside the default configuration trained alike, and report mean +- std test accuracy, the gain
with its 95% interval, and an ablation of weight sharing x auxiliary loss.

The test pairs are read here and only here.
"""

# ruff: noqa: E402 (a stop during the imports below must already exit quietly)
from __future__ import annotations

from search.stopping import exit_quietly

exit_quietly("search.final_eval")

import sys
from pathlib import Path

from search.cli import (
    Parser,
    add_device_option,
    add_precision_option,
    add_study_options,
    add_workers_option,
    check_workers,
    count,
    ensemble_size,
    non_negative_int,
    one_line_errors,
    seed_value,
)
from search.evaluation import DEFAULT_ENSEMBLE, EvalRequest, evaluate, publish, text_report
from search.machine import CORES
from search.stopping import held, raise_on_interrupt
from search.storage import mask_argv

PROG = "search.final_eval"
MAX_ROUNDS = 1000  # each round trains a dozen nets: a thousand is days of work already


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    # fmt: off
    add_study_options(p)
    p.add_argument("--trial", type=non_negative_int, default=None,
                   help="trial number to evaluate (default: the selection, the race's leader; "
                        "the search's best validation value where the study has no race)")
    p.add_argument("--rounds", type=count(MAX_ROUNDS), default=10,
                   help="rounds, each with new data and a new initialization, 1 to "
                        f"{MAX_ROUNDS:,} (default: 10)")
    p.add_argument("--seed", type=seed_value, default=0,
                   help="seed from which every round's seed is derived (default: 0)")
    add_workers_option(p, default=CORES,
                       help=f"parallel processes, one thread each (default: {CORES}, the cores)")
    add_device_option(p)
    add_precision_option(p, "every net of the evaluation trains in", "the study's")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="folder of the MNIST IDX files (default: the one the study used, "
                        "else the cache)")
    p.add_argument("--ensemble", type=ensemble_size, default=None,
                   help="nets the selection (and the default configuration) is trained as, their "
                        "posteriors averaged; with more than one the first net is also scored "
                        "alone, to show the search's own share of the gain (default: "
                        f"{DEFAULT_ENSEMBLE}; 1 on a study with a parameter budget)")
    p.add_argument("--no-ablation", action="store_true",
                   help="train the selection and the default configuration only (each as "
                        "--ensemble nets and, with more than one, as one net), without the "
                        "ablation's variants (default: with the ablation)")
    p.add_argument("--pack", choices=("on", "off"), default="on",
                   help="on: a variant's nets over several rounds train as one packed network, "
                        "as many as pay off on the device; off: one net at a time. The same "
                        "nets either way (default: on)")
    # fmt: on
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    check_workers(PROG, args.workers)
    request = EvalRequest(
        study=args.study,
        storage=args.storage,
        trial=args.trial,
        rounds=args.rounds,
        seed=args.seed,
        workers=args.workers,
        device=args.device,
        data_dir=args.data_dir,
        ensemble=args.ensemble,
        ablation=not args.no_ablation,
        pack=args.pack == "on",
        precision=args.precision,
        command=" ".join([PROG, *mask_argv(argv if argv is not None else sys.argv[1:])]),
    )
    published = False
    with one_line_errors(PROG):
        try:
            raise_on_interrupt()  # from here a stop is a KeyboardInterrupt, caught below
            done = evaluate(request)
            print(text_report(done.result))
            with held():  # the files, the artifacts, the attribute and the note, all or none
                json_path, html_path = publish(done.study, done.result, done.kept, done.folder)
                print(
                    f"\nsaved {done.result.model.path}, {json_path} and {html_path}; "
                    f"attached to study {args.study!r}"
                )
                published = True
        except KeyboardInterrupt:
            said = "it was published first" if published else "nothing was written"
            print(f"{PROG}: interrupted; {said}", file=sys.stderr)
            return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
