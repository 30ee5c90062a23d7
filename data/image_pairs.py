"""Pairs of digit image files a user brings: a list of images paired in order, or a CSV of two
columns of image paths; each image read once however many pairs it is in. A pair whose image
cannot be read is named with its row."""

from __future__ import annotations

import csv
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from data.errors import DataError
from data.images import read_digit

MAX_PAIRS = 100_000  # 100,000 pairs are 157 MB of inputs; a larger list is split by the user
MAX_CSV_BYTES = 64 << 20
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


@dataclass(frozen=True)
class ImagePair:
    first: Path
    second: Path
    where: str  # how the user finds it: "row 3 of pairs.csv", "pair 2 (images 3 and 4)"
    names: tuple[str, str]  # the two images as the user wrote them


def pairs_of_images(paths: Sequence[Path]) -> list[ImagePair]:
    """Images paired in order: a b c d is a vs b, c vs d."""
    if len(paths) % 2:
        raise DataError(
            f"--images takes pairs: {len(paths)} images is an odd number (a b c d compares a "
            "with b and c with d)"
        )
    if len(paths) // 2 > MAX_PAIRS:
        raise DataError(f"{len(paths) // 2:,} pairs: at most {MAX_PAIRS:,} at a time")
    return [
        ImagePair(
            paths[i],
            paths[i + 1],
            f"pair {i // 2 + 1} (images {i + 1} and {i + 2})",
            (str(paths[i]), str(paths[i + 1])),
        )
        for i in range(0, len(paths), 2)
    ]


def is_header(row: list[str], folder: Path) -> bool:
    """A first row is a header where neither cell names an image: no image suffix and no file."""
    return not any(
        cell.strip().lower().endswith(IMAGE_SUFFIXES) or (folder / cell.strip()).is_file()
        for cell in row[:2]
    )


def pairs_in_csv(path: Path) -> list[ImagePair]:
    """The pairs a CSV lists: two columns of image paths (relative to the CSV's folder, or
    absolute), with a header row or without; further columns are ignored."""
    if not path.is_file():
        raise DataError(f"{path}: no such CSV file")
    if path.stat().st_size > MAX_CSV_BYTES:
        raise DataError(f"{path}: larger than {MAX_CSV_BYTES >> 20} MB; split it")
    try:
        with open(path, newline="", encoding="utf-8-sig") as f:
            rows = [
                (n, row) for n, row in enumerate(csv.reader(f), 1) if any(c.strip() for c in row)
            ]
    except (UnicodeDecodeError, csv.Error) as e:
        raise DataError(f"{path} cannot be read as a CSV file ({e})") from None
    if not rows:
        raise DataError(f"{path} is empty: it needs a row for each pair, two image paths a row")
    folder = path.parent
    if is_header(rows[0][1], folder):
        rows = rows[1:]
        if not rows:
            raise DataError(f"{path} has a header and no pairs")
    narrow = next((n for n, row in rows if len(row) < 2), None)
    if narrow is not None:
        raise DataError(
            f"row {narrow} of {path} has one column; each row names two images: first,second"
        )
    if len(rows) > MAX_PAIRS:
        raise DataError(f"{path} lists {len(rows):,} pairs: at most {MAX_PAIRS:,} at a time")
    return [
        ImagePair(
            folder / a.strip(), folder / b.strip(), f"row {n} of {path}", (a.strip(), b.strip())
        )
        for n, (a, b, *_) in rows
    ]


@dataclass(frozen=True)
class ReadPairs:
    """The pairs whose images were read, as the protocol's tensors, and those that could not
    be, each with the reason."""

    pairs: list[ImagePair]
    inputs: torch.Tensor  # [len(pairs), 2, 14, 14], 0-255
    bad: list[tuple[ImagePair, str]]


def read_one(path: Path) -> np.ndarray | str:
    """An image as a [14, 14] array, or why it cannot be read."""
    try:
        return read_digit(path).numpy()
    except DataError as e:
        return str(e)


def read_all(paths: Sequence[Path], advance: Callable[[int], None]) -> list[np.ndarray | str]:
    # In this process: a pool of processes or threads read 2.4-25x slower here than one loop
    # (benchmarks/predict.py: decoding a small PNG is quicker than handing it between workers)
    out = []
    for p in paths:
        out.append(read_one(p))
        advance(1)
    return out


def read_image_pairs(
    pairs: Sequence[ImagePair],
    *,
    skip_bad: bool,
    advance: Callable[[int], None] = lambda n: None,
) -> ReadPairs:
    """Read every distinct image once (`advance` hears each image read). A pair with an image
    that cannot be read ends it all in one line naming the pair's row and the file, unless
    `skip_bad`: then it is listed in `bad`."""
    unique = list(dict.fromkeys(p for pair in pairs for p in (pair.first, pair.second)))
    images = dict(zip(unique, read_all(unique, advance), strict=True))
    good, inputs, bad = [], [], []
    for pair in pairs:
        a, b = images[pair.first], images[pair.second]
        why = a if isinstance(a, str) else b if isinstance(b, str) else None
        if why is None:
            good.append(pair)
            inputs.append(np.stack([a, b]))  # type: ignore[list-item]
        elif skip_bad:
            bad.append((pair, why))
        else:
            raise DataError(f"{pair.where}: {why}")
    stacked = torch.from_numpy(np.stack(inputs)) if inputs else torch.zeros(0, 2, 14, 14)
    return ReadPairs(good, stacked, bad)
