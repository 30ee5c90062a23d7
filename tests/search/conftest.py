from __future__ import annotations

from collections.abc import Iterator

import pytest

from tests.search.postgres import fresh_databases


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    with fresh_databases(1) as urls:
        yield urls[0]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """A test on the server carries the postgres marker, so -m "not postgres" leaves it out."""
    for item in items:
        uses_server = "pg_url" in getattr(item, "fixturenames", ())
        if uses_server and item.get_closest_marker("postgres") is None:
            raise pytest.UsageError(f"{item.nodeid} uses pg_url: mark it @pytest.mark.postgres")
