from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.helpers import TINY, run_cli
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


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A few-trial study made by the real CLI; each test copies it."""
    root = tmp_path_factory.mktemp("study")
    r = run_cli("search.run", "--trials", "3", "--workers", "1", "--study", "tiny", *TINY,
                "--pruner", "none", cwd=root)  # fmt: skip
    assert r.returncode == 0, r.stderr
    return root


def copy_study(src: Path, dst: Path) -> Path:
    (dst / "studies").mkdir()
    (dst / "studies" / "tiny.db").write_bytes((src / "studies" / "tiny.db").read_bytes())
    return dst
