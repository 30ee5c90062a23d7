"""python -m search.predict: is the first digit <= the second? Answered by a model file that
search.final_eval saved (studies/STUDY/model.safetensors), for pairs of image files (listed, or
in a CSV), a pair file, or test pairs drawn as the final evaluation draws them; the answers
printed, and written as CSV or JSON with --out."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from data import (
    DATASETS,
    MAX_PAIRS,
    ImagePair,
    load_source,
    make_splits,
    pairs_in_csv,
    pairs_of_images,
    read_image_pairs,
    read_pairs,
)
from models import SavedModel, load_model, resolve_device
from search.answers import (
    OUT_SUFFIXES,
    SHOWN,
    answer_rows,
    shown_table,
    summary,
    write_answers,
)
from search.cli import (
    Parser,
    add_device_option,
    count,
    non_negative_int,
    one_line_errors,
    seed_value,
)
from search.errors import UsageError
from search.evaluation import TEST_PAIRS, round_seed
from search.paths import DEFAULT_STUDY, model_path

PROG = "search.predict"
PROGRESS_FROM = 1000  # images: fewer are read without a progress bar


def build_parser() -> Parser:
    p = Parser(prog=PROG, description=__doc__)
    # fmt: off
    p.add_argument("--model", type=Path, default=model_path(DEFAULT_STUDY),
                   help="a model file saved by search.final_eval (default: %(default)s)")
    what = p.add_mutually_exclusive_group(required=True)
    what.add_argument("--images", type=Path, nargs="+", metavar="IMAGE",
                      help="PNG or JPEG images of one digit each, any size, light on dark or "
                           "dark on light (a transparent canvas: the opaque part is the digit), "
                           "paired in order: a b c d answers a vs b and c vs d; each is centred "
                           f"and scaled as MNIST's digits were; at most {MAX_PAIRS:,} pairs")
    what.add_argument("--pairs-csv", type=Path, metavar="FILE",
                      help="a CSV with two columns of image paths (relative to the CSV's "
                           "folder), one pair a row, with a header row or without; further "
                           f"columns are ignored; at most {MAX_PAIRS:,} pairs")
    what.add_argument("--pairs-file", type=Path, metavar="FILE",
                      help=".npy or .pt file of N x 2 x 14 x 14 pairs on the 0-255 scale "
                           "(the protocol's tensors); one row per pair")
    what.add_argument("--dataset", choices=DATASETS,
                      help="score test pairs drawn as search.final_eval draws them and print "
                           "the accuracy")
    p.add_argument("--out", type=Path, metavar="FILE",
                   help="write one row per pair to FILE.csv or FILE.json (by its extension): "
                        "the two inputs, P(first <= second), the answer, the two digits read "
                        "and their probabilities; written atomically, never over the model "
                        "file or an input")
    p.add_argument("--skip-bad", action="store_true",
                   help="a pair whose image cannot be read is listed and left out, and every "
                        "other pair answered (default: the first such pair ends the command "
                        "before anything is written)")
    p.add_argument("--pairs", type=count(MAX_TEST_PAIRS), default=TEST_PAIRS,
                   help=f"with --dataset: how many test pairs, 1 to {MAX_TEST_PAIRS:,} "
                        f"(default: {TEST_PAIRS})")
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


MAX_TEST_PAIRS = 5000  # MNIST-test's 10,000 images make 5,000 pairs


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


def check_out(args: argparse.Namespace) -> None:
    """--out, before anything is read: a .csv or .json path in a folder that exists, and
    neither the model file nor an input."""
    out = args.out
    if args.dataset is not None:
        raise UsageError("--out writes the answers for --images, --pairs-csv or --pairs-file")
    inputs = [args.model, *(args.images or []), args.pairs_csv, args.pairs_file]
    if any(p is not None and p.exists() and p.resolve() == out.resolve() for p in inputs):
        raise UsageError(f"--out {out} is an input of this command; name another file")
    if out.suffix.lower() not in OUT_SUFFIXES:
        raise UsageError(f"--out {out}: name a .csv or a .json file")
    if not out.parent.is_dir():
        raise UsageError(f"--out {out}: the folder {out.parent} does not exist")
    if out.is_dir():
        raise UsageError(f"--out {out} is a folder; name a file in it")


def image_pairs(args: argparse.Namespace) -> list[ImagePair]:
    pairs = pairs_of_images(args.images) if args.images else pairs_in_csv(args.pairs_csv)
    if args.out is not None:
        out = args.out.resolve()
        clash = next((p for p in pairs if out in (p.first.resolve(), p.second.resolve())), None)
        if clash is not None:
            raise UsageError(f"--out {args.out} is an image of {clash.where}; name another file")
    return pairs


def answer(args: argparse.Namespace) -> int:
    listed = image_pairs(args) if args.images or args.pairs_csv else []  # before the model
    if args.out is not None:
        check_out(args)
    model = load_model(args.model, device=resolve_device(args.device))
    print(describe(model))
    if args.dataset is not None:
        print(test_pairs(model, args))
        return 0
    bad: list[tuple[ImagePair, str]] = []
    if args.pairs_file is not None:
        inputs = read_pairs(args.pairs_file)
        names = [
            (f"{args.pairs_file}[{i},0]", f"{args.pairs_file}[{i},1]") for i in range(len(inputs))
        ]
    else:
        pairs = listed
        images = len({p for pair in pairs for p in (pair.first, pair.second)})
        with tqdm(total=images, unit="image", desc="reading", disable=images < PROGRESS_FROM,
                  file=sys.stderr) as bar:  # fmt: skip
            read = read_image_pairs(pairs, skip_bad=args.skip_bad, advance=bar.update)
        inputs, bad = read.inputs, read.bad
        names = [pair.names for pair in read.pairs]
    rows = answer_rows(model.predict(inputs), names)
    print(shown_table(rows) if len(rows) <= SHOWN else summary(rows))
    if args.out is not None:
        write_answers(args.out, rows)
        print(f"wrote {len(rows):,} answers to {args.out}")
    for pair, why in bad:
        print(f"{PROG}: skipped {pair.where}: {why}", file=sys.stderr)
    if bad:
        print(f"{PROG}: skipped {len(bad):,} of {len(bad) + len(rows):,} pairs", file=sys.stderr)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        with one_line_errors(PROG):
            return answer(args)
    except KeyboardInterrupt:
        print(f"{PROG}: interrupted; nothing was written", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
