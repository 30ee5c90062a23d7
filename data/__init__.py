"""Digit-pair data: the MNIST sources and the pair-generation protocol."""

from data.errors import DataError
from data.images import read_digit
from data.pair_files import read_pairs
from data.pairs import PairSet
from data.sources import DATASETS, Source, load_source
from data.splits import Splits, make_splits

__all__ = [
    "DATASETS",
    "DataError",
    "PairSet",
    "Source",
    "Splits",
    "load_source",
    "make_splits",
    "read_digit",
    "read_pairs",
]
