"""The local PostgreSQL server in tests: fresh databases, and closing one to connections."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterator

import psycopg
import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"


@contextlib.contextmanager
def fresh_databases(n: int) -> Iterator[list[str]]:
    """`n` new PostgreSQL databases on the local server, their URLs; dropped afterwards."""
    names = [f"test_{uuid.uuid4().hex[:12]}" for _ in range(n)]
    try:
        admin = psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as e:
        pytest.fail(f"PostgreSQL is not running on 127.0.0.1:5432 ({e}); .ci/run starts it")
    with admin:
        for name in names:
            admin.execute(f'CREATE DATABASE "{name}"')
    yield [f"postgresql+psycopg://postgres@127.0.0.1:5432/{name}" for name in names]
    # A new connection: a test may have restarted the server meanwhile.
    with psycopg.connect(PG_ADMIN, autocommit=True, connect_timeout=30) as admin:
        for name in names:
            admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')


def allow_connections(name: str, allow: bool) -> None:
    """Open or close a database to connections; closing also ends its sessions."""
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{name}" WITH ALLOW_CONNECTIONS {str(allow).lower()}')
        if not allow:
            admin.execute(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name]
            )
