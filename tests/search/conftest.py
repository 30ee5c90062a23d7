from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

PG_ADMIN = "postgresql://postgres@127.0.0.1:5432/postgres"
TINY = ["--epochs", "2", "--train-pairs", "100", "--val-pairs", "50"]


def run_cli(
    module: str, *args: str, cwd: Path, timeout: float = 300
) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=env,
        check=False,
    )


def run_tool(
    name: str, *args: str, cwd: Path, timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    """A console script installed beside this Python (optuna, optuna-dashboard)."""
    return subprocess.run(
        [str(Path(sys.executable).parent / name), *args],
        cwd=cwd, capture_output=True, text=True, timeout=timeout, check=False,
    )  # fmt: skip


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


@pytest.fixture
def pg_url() -> Iterator[str]:
    """A fresh PostgreSQL database on the local server, dropped afterwards."""
    with fresh_databases(1) as urls:
        yield urls[0]
