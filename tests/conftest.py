from __future__ import annotations

import pytest

from data import Source, Splits, load_source, make_splits


@pytest.fixture(scope="session")
def mnist5k() -> Source:
    return load_source("mnist5k")


@pytest.fixture(scope="session")
def splits(mnist5k: Source) -> Splits:
    return make_splits(mnist5k, seed=0)
