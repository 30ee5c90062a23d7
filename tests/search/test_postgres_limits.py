"""PostgreSQL as deployments have it, on the real server: a user with SELECT only, and a
database at its connection limit, each end in one line before any work, with no half-made
schema."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest

from tests.helpers import TINY, assert_one_line_error, run_cli
from tests.search.postgres import PG_ADMIN

pytestmark = pytest.mark.postgres


ROLES: list[str] = []  # made by a test, dropped with its database


def new_role() -> str:
    role = f"user_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE ROLE "{role}" LOGIN')
    ROLES.append(role)
    return role


@pytest.fixture
def role_and_database() -> Iterator[tuple[str, str]]:
    """A new login role (no superuser) and a new database it owns; dropped afterwards, with
    every role the test made."""
    role, database = new_role(), f"limits_{uuid.uuid4().hex[:10]}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{database}" OWNER "{role}"')
    yield role, database
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE "{database}" WITH (FORCE)')
        while ROLES:
            admin.execute(f'DROP ROLE "{ROLES.pop()}"')


def tables(database: str) -> list[str]:
    url = PG_ADMIN.rsplit("/", 1)[0] + f"/{database}"
    with psycopg.connect(url) as conn:
        rows = conn.execute("SELECT tablename FROM pg_tables WHERE schemaname = 'public'")
        return sorted(row[0] for row in rows)


def url(role: str, database: str) -> str:
    return f"postgresql+psycopg://{role}@127.0.0.1:5432/{database}"


def test_a_user_with_select_only_is_refused_before_any_training(
    role_and_database: tuple[str, str], tmp_path: Path
) -> None:
    owner, database = role_and_database
    r = run_cli("search.run", "--trials", "1", "--workers", "1", "--study", "s", *TINY,
                "--storage", url(owner, database), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 0, r.stderr
    reader = new_role()
    with psycopg.connect(url(owner, database).replace("+psycopg", ""), autocommit=True) as conn:
        conn.execute(f'GRANT SELECT ON ALL TABLES IN SCHEMA public TO "{reader}"')
    r = run_cli("search.final_eval", "--study", "s", "--rounds", "1",
                "--storage", url(reader, database), cwd=tmp_path)  # fmt: skip
    assert_one_line_error(r, f"PostgreSQL user {reader!r} may not INSERT on table", "GRANT")
    assert "variant(s)" not in r.stdout  # refused before training
    assert not (tmp_path / "studies").exists()
    r = run_cli("search.run", "--trials", "2", "--study", "s", "--storage",
                url(reader, database), cwd=tmp_path)  # fmt: skip
    assert_one_line_error(r, f"PostgreSQL user {reader!r} may not INSERT on table")


def test_a_connection_limit_too_small_leaves_no_half_made_schema(
    role_and_database: tuple[str, str], tmp_path: Path
) -> None:
    role, database = role_and_database
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT 1')
    r = run_cli("search.run", "--trials", "1", "--workers", "1", *TINY, "--storage",
                url(role, database), cwd=tmp_path)  # fmt: skip
    assert_one_line_error(r, f"database {database!r} allows 1 connection(s)", "CONNECTION LIMIT")
    assert tables(database) == []


def test_a_database_at_its_limit_is_a_fault_said_in_one_line(
    role_and_database: tuple[str, str], tmp_path: Path
) -> None:
    role, database = role_and_database
    with psycopg.connect(PG_ADMIN, autocommit=True) as admin:
        admin.execute(f'ALTER DATABASE "{database}" CONNECTION LIMIT 3')
    held = url(role, database).replace("+psycopg", "")
    with psycopg.connect(held), psycopg.connect(held):  # another client holds two
        r = run_cli("search.run", "--trials", "1", "--workers", "1", *TINY, "--storage",
                    url(role, database), cwd=tmp_path)  # fmt: skip
    assert r.returncode == 1, r.stderr
    lines = [line for line in r.stderr.splitlines() if line.strip()]
    assert len(lines) == 1 and "has 1 of its 3 connections free" in lines[0], r.stderr
    assert tables(database) == []
