"""Benchmark: search.predict on many pairs of PNG files, end to end and in its parts.

A model file of the default configuration (trained a few epochs) answers 10,000 pairs listed
in a CSV: (a) 20,000 distinct image files, every image in one pair, and (b) 1,000 image files
in 10,000 pairs (a folder of scans compared many ways; each file is read once). Each case runs
the real command (`--pairs-csv FILE --out answers.csv`, process start-up and the model's
loading included) and, apart, in this process: the image reading alone and the model alone on
the read pairs. Pairs a second are medians over the repetitions.

    python benchmarks/predict.py [--pairs 10000] [--reps 3]
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from PIL import Image

from data import load_source, make_splits, pairs_in_csv, read_image_pairs
from data.idx import IMAGES_MAGIC, read_idx
from data.sources import EMBEDDED
from models import Config, load_model, save_model, train


def model_file(folder: Path) -> Path:
    """The default configuration trained 3 epochs on mnist5k, saved as search.final_eval saves
    a model."""
    splits = make_splits(load_source("mnist5k"), seed=0)
    config = Config(epochs=3)
    result = train(config, splits.train, {"val": splits.val}, mean=splits.mean, std=splits.std,
                   seed=0, device=torch.device("cpu"))  # fmt: skip
    path = folder / "model.safetensors"
    info = {"study": "benchmark", "trial": 0, "dataset": "mnist5k"}
    states = [n.state_dict() for n in result.nets]
    save_model(path, states, config=config, mean=splits.mean, std=splits.std, info=info)
    return path


def write_case(folder: Path, *, images: int, pairs: int) -> Path:
    """`images` PNG files of real digits (28x28, MNIST's own) and a CSV of `pairs` pairs."""
    raw = read_idx(EMBEDDED / "images-idx3-ubyte.gz", magic=IMAGES_MAGIC)  # MNIST's 28x28
    (folder / "scans").mkdir(parents=True)
    g = torch.Generator().manual_seed(0)
    order = torch.randperm(len(raw), generator=g)  # the file is sorted by digit
    for i in range(images):
        Image.fromarray(raw[order[i % len(raw)]].numpy()).save(folder / "scans" / f"{i}.png")
    if images >= 2 * pairs:
        chosen = torch.arange(2 * pairs).view(pairs, 2)
    else:
        chosen = torch.randint(0, images, (pairs, 2), generator=g)
    rows = "".join(f"scans/{a}.png,scans/{b}.png\n" for a, b in chosen.tolist())
    (folder / "pairs.csv").write_text("first,second\n" + rows)
    return folder / "pairs.csv"


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__)
    p.add_argument("--pairs", type=int, default=10_000, help="pairs a case (default: 10000)")
    p.add_argument("--reps", type=int, default=3, help="repetitions (default: 3)")
    args = p.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        model = model_file(root)
        cases = {
            f"{2 * args.pairs:,} distinct images": (2 * args.pairs, args.pairs),
            f"1,000 images in {args.pairs:,} pairs": (1000, args.pairs),
        }
        print(f"{args.pairs:,} pairs a case, {args.reps} repetitions, medians; pairs a second")
        print(f"{'case':<34}{'command':>12}{'reading':>12}{'model':>12}")
        for name, (images, pairs) in cases.items():
            csv = write_case(root / name.split()[0].replace(",", ""), images=images, pairs=pairs)
            command, reading, answering = [], [], []
            for _ in range(args.reps):
                start = time.perf_counter()
                subprocess.run(
                    [sys.executable, "-m", "search.predict", "--model", str(model),
                     "--pairs-csv", str(csv), "--out", str(csv.with_name("answers.csv"))],
                    check=True, capture_output=True,
                )  # fmt: skip
                command.append(pairs / (time.perf_counter() - start))
                start = time.perf_counter()
                read = read_image_pairs(pairs_in_csv(csv), skip_bad=False)
                reading.append(pairs / (time.perf_counter() - start))
                loaded = load_model(model)
                start = time.perf_counter()
                loaded.predict(read.inputs)
                answering.append(pairs / (time.perf_counter() - start))
            cells = (statistics.median(x) for x in (command, reading, answering))
            print(f"{name:<34}" + "".join(f"{c:>12,.0f}" for c in cells))


if __name__ == "__main__":
    main()
