"""python -m search.predict: is the first digit <= the second? Answered by a model file that
search.final_eval saved (studies/STUDY/model.safetensors), for two images, a pair file, or
test pairs drawn as the final evaluation draws them."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from data import DATASETS, load_source, make_splits, read_digit, read_pairs
from models import Prediction, SavedModel, load_model, resolve_device
from search.cli import (
    Parser,
    add_device_option,
    non_negative_int,
    one_line_errors,
    positive_int,
    seed_value,
)
from search.columns import table
from search.evaluation import TEST_PAIRS, round_seed
from search.paths import model_path
from search.study import DEFAULT_STUDY

PROG = "search.predict"


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    # fmt: off
    p.add_argument("--model", type=Path, default=model_path(DEFAULT_STUDY),
                   help="a model file saved by search.final_eval (default: %(default)s)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", type=Path, nargs=2, metavar=("FIRST", "SECOND"),
                      help="two PNG or JPEG images of one digit each, any size, light on dark "
                           "or dark on light (a transparent canvas: the opaque part is the "
                           "digit); each is centred and scaled as MNIST's digits were")
    what.add_argument("--pairs-file", type=Path, metavar="FILE",
                      help=".npy or .pt file of N x 2 x 14 x 14 pairs on the 0-255 scale "
                           "(the protocol's tensors); one row per pair")
    what.add_argument("--dataset", choices=DATASETS,
                      help="score test pairs drawn as search.final_eval draws them and print "
                           "the accuracy")
    p.add_argument("--pairs", type=positive_int, default=TEST_PAIRS,
                   help=f"with --dataset: how many test pairs (default: {TEST_PAIRS})")
    p.add_argument("--seed", type=seed_value, default=None,
                   help="with --dataset: the final evaluation's --seed whose round to draw "
                        "(default: the one the model was evaluated with)")
    p.add_argument("--round", type=non_negative_int, default=None,
                   help="with --dataset: which round of that evaluation (default: the model's "
                        "own, whose test accuracy the model file records)")
    p.add_argument("--data-dir", type=Path, default=None,
                   help="with --dataset mnist: the folder of the MNIST IDX files "
                        "(default: the cache)")
    add_device_option(p)
    # fmt: on
    return p


def rows(prediction: Prediction, names: list[str]) -> list[tuple[str, ...]]:
    return [
        (
            name,
            f"{p:.4f}",
            "yes" if yes else "no",
            f"{int(a)} {'<=' if a <= b else '>'} {int(b)}",
            f"{pa:.3f} {pb:.3f}",
        )
        for name, p, yes, (a, b), (pa, pb) in zip(
            names,
            prediction.p_le.tolist(),
            prediction.decision.tolist(),
            prediction.digits.tolist(),
            prediction.digit_p.tolist(),
            strict=True,
        )
    ]


HEADER = ("pair", "P(first <= second)", "first <= second?", "digits read", "their P")


def test_pairs(model: SavedModel, args: argparse.Namespace) -> str:
    """The accuracy on test pairs of one round of a final evaluation, as it drew them."""
    info = model.info
    seed = args.seed if args.seed is not None else info.get("evaluation_seed", 0)
    index = args.round if args.round is not None else info.get("round", 0)
    source = load_source(args.dataset, args.data_dir)
    splits = make_splits(
        source, seed=round_seed(seed, index), n_train=1, n_val=0, n_test=args.pairs
    )
    assert splits.test is not None
    prediction = model.predict(splits.test.input)
    right = int((prediction.decision.long() == splits.test.target).sum())
    digits = int((prediction.digits == splits.test.classes).sum())
    n = len(splits.test)
    lines = [
        f"{n} test pairs of {args.dataset}, round {index} of a final evaluation with --seed {seed}",
        f"comparison accuracy: {100 * right / n:.2f} % ({right} of {n})",
        f"digit accuracy: {100 * digits / (2 * n):.2f} % ({digits} of {2 * n} digits)",
    ]
    recorded = info.get("test_accuracy")
    same = (info.get("dataset"), info.get("round_seed"), info.get("test_pairs"))
    if recorded is not None and same == (args.dataset, round_seed(seed, index), n):
        lines.append(f"the model file records {100 * recorded:.2f} % on these pairs")
    return "\n".join(lines)


def describe(model: SavedModel) -> str:
    info, c = model.info, model.config
    nets = f"{c.ensemble} nets" if c.ensemble > 1 else "one net"
    return (
        f"model {model.path}: study {info.get('study')!r} trial #{info.get('trial')}, "
        f"{c.family} ({nets}), trained on {info.get('dataset')}"
    )


def answer(args: argparse.Namespace) -> None:
    model = load_model(args.model, device=resolve_device(args.device))
    print(describe(model))
    if args.dataset is not None:
        print(test_pairs(model, args))
        return
    if args.images is not None:
        pairs = torch.stack([read_digit(p) for p in args.images]).unsqueeze(0)
        names = [" vs ".join(map(str, args.images))]
    else:
        pairs = read_pairs(args.pairs_file)
        names = [str(i) for i in range(len(pairs))]
    print(table(rows(model.predict(pairs), names), header=HEADER))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line_errors(PROG):
            answer(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted", file=sys.stderr)
        return 130
    return 0


if __name__ == "__main__":
    sys.exit(main())
