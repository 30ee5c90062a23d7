"""Opening a study's storage: file storages belong to one `search.run` at a time
(search.storage.locks), so any trial still RUNNING when a run starts is stale; PostgreSQL is
shared by workers on many machines and relies on heartbeats instead."""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from search.errors import StorageDamaged, UsageError
from search.storage.journal import cut_torn_tail, find_damage, journal_name
from search.storage.spec import StorageSpec

MAX_RETRY = 3  # a trial whose worker died is run again at most this many times
# Errors of two processes creating the same new schema at once (SQLite, PostgreSQL): the loser
# finds a table or the version row already there. Opening again then finds the schema complete.
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")
SCHEMA_ATTEMPTS = 5
OPTUNA_TABLES = {"studies", "trials", "alembic_version", "version_info"}


def _prepare_parent(path: Path, *, create: bool) -> None:
    parent = path.parent if str(path.parent) else Path(".")
    if create:
        try:
            parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise UsageError(f"cannot create {parent} for {path}: {e.strerror}") from None
    elif not path.exists():
        raise UsageError(f"{path} does not exist; check --storage or run python -m search.run")
    if create and not os.access(parent, os.W_OK):
        raise UsageError(f"{parent} is not writable; choose another --storage location")


def error_detail(error: BaseException) -> str:
    """The first line of the database's own message (SQLAlchemy keeps it as `orig`)."""
    original = getattr(error, "orig", None) or error
    text = str(original).strip()
    return text.splitlines()[0] if text else repr(original)


def storage_error(spec: StorageSpec, error: Exception) -> UsageError:
    """One line for a database that cannot be reached or opened."""
    detail = error_detail(error)
    where = spec.url
    if spec.kind == "postgresql":
        url = sqlalchemy.engine.make_url(spec.url)
        where = f"PostgreSQL at {url.host or 'localhost'}:{url.port or 5432}/{url.database}"
    return UsageError(f"cannot open the study storage {where}: {detail}")


def check_sqlite_file(path: Path) -> None:
    """Refuse, before writing anything, an SQLite file that is not an Optuna storage."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
    except sqlite3.DatabaseError as e:
        raise UsageError(
            f"{path} is not an SQLite database ({e}); choose another --storage"
        ) from None
    if tables and not tables & OPTUNA_TABLES:  # some of Optuna's may be still in the making
        shown = ", ".join(sorted(tables)[:5])
        raise UsageError(
            f"{path} is another program's SQLite database (tables: {shown}); "
            "choose another --storage"
        )


def open_storage(
    spec: StorageSpec, *, create: bool = True, heartbeat: int = 20, pool_size: int = 2
) -> optuna.storages.BaseStorage:
    """Open a storage. RDB storages get heartbeats; stale trials are failed and retried. A
    journal's torn last line is cut off first (and said on stderr)."""
    path = spec.path
    if path is not None:
        _prepare_parent(path, create=create)
    if spec.kind == "sqlite" and path is not None and path.is_file():
        check_sqlite_file(path)
    if spec.kind == "journal" and path is not None:
        try:
            repaired = cut_torn_tail(path)
            damage = find_damage(path)
        except OSError as e:
            raise UsageError(f"cannot repair {path}: {e.strerror}") from None
        if repaired:
            print(repaired, file=sys.stderr)
        if damage:
            raise StorageDamaged(damage)
    with warnings.catch_warnings():
        return _open(spec, path, heartbeat, pool_size)


def _open(
    spec: StorageSpec, path: Path | None, heartbeat: int, pool_size: int
) -> optuna.storages.BaseStorage:
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        if spec.kind == "journal":
            assert path is not None
            return JournalStorage(JournalFileBackend(journal_name(path)))
        engine_kwargs: dict[str, object] = {}
        if spec.kind == "postgresql":
            engine_kwargs = {
                "pool_pre_ping": True,  # a connection dropped by a server restart is replaced
                "pool_size": pool_size,
                "max_overflow": pool_size,
                "connect_args": {"connect_timeout": 10},
            }
        else:
            engine_kwargs = {"connect_args": {"timeout": 60}}
        return _rdb_storage(spec.url, engine_kwargs, heartbeat)
    except (sqlalchemy.exc.SQLAlchemyError, OSError) as e:
        raise storage_error(spec, e) from None


def _rdb_storage(url: str, engine_kwargs: dict[str, object], heartbeat: int) -> RDBStorage:
    attempt = 1
    while True:
        try:
            return RDBStorage(
                url,
                engine_kwargs=engine_kwargs,
                heartbeat_interval=heartbeat,
                # A live worker beats every `heartbeat` seconds from its own thread, however slow
                # its epochs; only a worker silent for three beats is taken for dead.
                grace_period=3 * heartbeat,
                heartbeat_stale_trial_callback=RetryHeartbeatStaleTrialCallback(
                    max_retry=MAX_RETRY
                ),
            )
        except sqlalchemy.exc.DatabaseError as e:
            if attempt == SCHEMA_ATTEMPTS or not any(m in str(e) for m in SCHEMA_RACE):
                raise
            time.sleep(0.1 * attempt)  # another process is creating the schema
            attempt += 1
