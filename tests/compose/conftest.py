"""The compose tests' engine and images are prepared in a background thread while other tests
run (the base image is mostly network and dpkg time).

One test process: the preparation starts at the end of collection and the compose tests run
last. Several (pytest-xdist, a test file to a process): the compose tests' file is handed out
first, and the process that runs it prepares the images itself while the other processes run
the rest; every process collects every test, so a preparation started at collection would build
the images once per process. No other test depends on timing: the Ctrl-C tests wait for a
state of the run."""

from __future__ import annotations

import pytest

from harness.stack import Preparation

PREPARATION = pytest.StashKey[Preparation]()


def is_compose(item: pytest.Item) -> bool:
    return item.get_closest_marker("compose") is not None


def in_xdist_worker(config: pytest.Config) -> bool:
    return hasattr(config, "workerinput")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    # stable sorts: the other tests keep their order
    if in_xdist_worker(config):
        items.sort(key=lambda item: not is_compose(item))  # the longest file, handed out first
    else:
        items.sort(key=is_compose)  # last, after the images had the other tests' time to build


def pytest_collection_finish(session: pytest.Session) -> None:
    if not in_xdist_worker(session.config) and any(is_compose(i) for i in session.items):
        preparation = session.config.stash[PREPARATION] = Preparation()
        preparation.thread.start()


def pytest_sessionfinish(session: pytest.Session) -> None:
    preparation = session.config.stash.get(PREPARATION, None)
    if preparation is not None:
        preparation.close()  # waits for a build still running, stops an engine started here


@pytest.fixture(scope="session")
def prepared(request: pytest.FixtureRequest) -> Preparation:
    stash = request.config.stash
    if PREPARATION not in stash:  # a test process of several: this one runs the compose tests
        stash[PREPARATION] = Preparation()
        stash[PREPARATION].thread.start()
    return stash[PREPARATION]
