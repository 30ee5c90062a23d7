"""Digit-pair data: the MNIST sources and the pair-generation protocol."""

from data.errors import DataError
from data.idx import write_idx
from data.pairs import PairSet, generate_pairs
from data.sources import DATASETS, Source, load_source
from data.splits import Splits, make_splits

__all__ = [
    "DATASETS",
    "DataError",
    "PairSet",
    "Source",
    "Splits",
    "generate_pairs",
    "load_source",
    "make_splits",
    "write_idx",
]
