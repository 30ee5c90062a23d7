"""The compose tests run last; their engine and images are prepared in a background thread
from the end of collection, so the image builds (mostly network and dpkg time) overlap the
other tests. No other test depends on timing: the Ctrl-C tests wait for a state of the run."""

from __future__ import annotations

import pytest

from tests.compose.stack import Preparation

PREPARATION = pytest.StashKey[Preparation]()


def is_compose(item: pytest.Item) -> bool:
    return item.get_closest_marker("compose") is not None


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    items.sort(key=is_compose)  # stable: the others keep their order, the compose tests follow


def pytest_collection_finish(session: pytest.Session) -> None:
    if any(is_compose(item) for item in session.items):
        preparation = session.config.stash[PREPARATION] = Preparation()
        preparation.thread.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    preparation = session.config.stash.get(PREPARATION, None)
    if preparation is not None:
        preparation.close()  # waits for a build still running, stops an engine started here


@pytest.fixture(scope="session")
def prepared(request: pytest.FixtureRequest) -> Preparation:
    return request.config.stash[PREPARATION]
