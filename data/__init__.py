"""Digit-pair data: the MNIST sources, the pair-generation protocol, and the digit images and
pair files a user brings."""

from data.errors import DataError
from data.image_pairs import (
    MAX_PAIRS,
    ImagePair,
    pairs_in_csv,
    pairs_of_images,
    read_image_pairs,
)
from data.pair_files import read_pairs
from data.pairs import PairSet
from data.sources import DATASETS, Source, load_source
from data.splits import Splits, make_splits

__all__ = [
    "DATASETS",
    "MAX_PAIRS",
    "DataError",
    "ImagePair",
    "PairSet",
    "Source",
    "Splits",
    "load_source",
    "make_splits",
    "pairs_in_csv",
    "pairs_of_images",
    "read_image_pairs",
    "read_pairs",
]
