from __future__ import annotations

import pytest

from data import Source, Splits, load_source, make_splits
from data.fetch import CACHE_VARIABLE, MIRRORS_VARIABLE

# No test may reach the internet: MNIST fetches go to a port where nothing listens (the fetch
# tests give their own local server), and the cache is each test's own folder.
NOWHERE = "http://127.0.0.1:9/"


@pytest.fixture(autouse=True)
def offline(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(MIRRORS_VARIABLE, NOWHERE)
    monkeypatch.setenv(CACHE_VARIABLE, str(tmp_path_factory.mktemp("cache") / "mnist"))


@pytest.fixture(scope="session")
def mnist5k() -> Source:
    return load_source("mnist5k")


@pytest.fixture(scope="session")
def splits(mnist5k: Source) -> Splits:
    return make_splits(mnist5k, seed=0)
