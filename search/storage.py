"""Where studies live: SQLite and journal files under studies/, or PostgreSQL.

File storages belong to one `search.run` at a time (an exclusive lock next to the file), so
any trial still RUNNING when a run starts is stale. PostgreSQL is shared by workers on many
machines and relies on heartbeats instead.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import warnings
import zlib
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from sqlalchemy.pool import NullPool

from search.errors import UsageError

STUDIES_DIR = Path("studies")
JOURNAL_SUFFIXES = (".journal", ".log")
MAX_RETRY = 3  # a trial whose worker died is run again at most this many times
# Errors of two processes creating the same new schema at once (SQLite, PostgreSQL): the loser
# finds a table or the version row already there. Opening again then finds the schema complete.
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")
SCHEMA_ATTEMPTS = 5


@dataclass(frozen=True)
class StorageSpec:
    kind: str  # sqlite | journal | postgresql
    url: str  # SQLAlchemy URL, or the journal file's path

    @property
    def path(self) -> Path | None:
        if self.kind == "sqlite":
            return Path(self.url.removeprefix("sqlite:///"))
        if self.kind == "journal":
            return Path(self.url)
        return None

    @property
    def shared(self) -> bool:
        """Whether several processes may write to it."""
        return self.kind != "sqlite"


def parse_storage(text: str) -> StorageSpec:
    """A --storage value: sqlite:///PATH, postgresql[+psycopg]://..., or PATH.journal."""
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise UsageError(
                    f"--storage {text}: write sqlite:///relative.db or sqlite:////abs.db"
                )
            return StorageSpec("sqlite", text)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            url = "postgresql+psycopg://" + rest
            try:
                parsed = sqlalchemy.engine.make_url(url)
            except sqlalchemy.exc.ArgumentError:
                raise UsageError(f"--storage {text}: malformed PostgreSQL URL") from None
            if not parsed.database:
                raise UsageError(f"--storage {text}: name the database, e.g. .../optuna")
            return StorageSpec("postgresql", url)
        raise UsageError(
            f"--storage {text}: unknown scheme {scheme!r}; use sqlite:///FILE.db, "
            "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
        )
    if text.endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", text)
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        return StorageSpec("sqlite", f"sqlite:///{text}")
    raise UsageError(
        f"--storage {text}: not a storage; use sqlite:///FILE.db, "
        "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
    )


def default_storage(study: str, *, workers: int) -> tuple[StorageSpec, str | None]:
    """studies/<study>.db for one process, studies/<study>.journal for several; an existing
    file of this study wins. Returns the spec and a note when the choice needs saying."""
    db, journal = STUDIES_DIR / f"{study}.db", STUDIES_DIR / f"{study}.journal"
    if db.exists() and journal.exists():
        raise UsageError(f"both {db} and {journal} exist; choose one with --storage")
    if db.exists():
        return StorageSpec("sqlite", f"sqlite:///{db}"), None
    if journal.exists() or workers > 1:
        return StorageSpec("journal", str(journal)), None
    return StorageSpec("sqlite", f"sqlite:///{db}"), None


def find_storage(study: str, storage: str | None) -> StorageSpec:
    """For commands that read an existing study (final evaluation, dashboard)."""
    if storage is not None:
        return parse_storage(storage)
    db, journal = STUDIES_DIR / f"{study}.db", STUDIES_DIR / f"{study}.journal"
    found = [p for p in (db, journal) if p.exists()]
    if not found:
        raise UsageError(
            f"no study {study!r} under {STUDIES_DIR}/ ({db.name} or {journal.name}); "
            "run python -m search.run first or pass --storage"
        )
    if len(found) == 2:
        raise UsageError(f"both {db} and {journal} exist; choose one with --storage")
    return parse_storage(str(found[0]) if found[0] == journal else f"sqlite:///{db}")


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


def open_storage(
    spec: StorageSpec, *, create: bool = True, heartbeat: int = 20, pool_size: int = 2
) -> optuna.storages.BaseStorage:
    """Open a storage. RDB storages get heartbeats; stale trials are failed and retried."""
    path = spec.path
    if path is not None:
        _prepare_parent(path, create=create)
    with warnings.catch_warnings():
        return _open(spec, path, heartbeat, pool_size)


def _open(
    spec: StorageSpec, path: Path | None, heartbeat: int, pool_size: int
) -> optuna.storages.BaseStorage:
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        if spec.kind == "journal":
            assert path is not None
            return JournalStorage(JournalFileBackend(str(path)))
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


@contextlib.contextmanager
def owner_lock(spec: StorageSpec) -> Iterator[None]:
    """Hold a file storage for this run; a second run on the same file is refused."""
    path = spec.path
    if path is None:
        yield
        return
    lock_path = path.with_name(path.name + ".owner")
    with open(lock_path, "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            f.seek(0)
            raise UsageError(
                f"{path} is in use by another search.run (pid {f.read().strip() or '?'}); "
                "wait for it, or share a study between runs with PostgreSQL"
            ) from None
        f.seek(0)
        f.truncate()
        f.write(str(os.getpid()))
        f.flush()
        yield


class SlotLock:
    """Serializes "count the trials taken, then ask for one" across processes, so the shared
    trial total is exact: a PostgreSQL advisory lock, or a file lock beside a journal file."""

    def __init__(self, spec: StorageSpec, study: str) -> None:
        self.spec = spec
        self.key = zlib.crc32(study.encode())
        self.engine = (
            sqlalchemy.create_engine(spec.url, poolclass=NullPool)
            if spec.kind == "postgresql"
            else None
        )
        self.file: IO[str] | None = None
        self.conn: sqlalchemy.engine.Connection | None = None

    def __enter__(self) -> None:
        if self.engine is not None:
            self.conn = self.engine.connect()
            self.conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        elif self.spec.kind == "journal":
            assert self.spec.path is not None
            self.file = open(self.spec.path.with_name(self.spec.path.name + ".slots"), "a")
            fcntl.flock(self.file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                self.conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.conn.close()  # closing the session releases the lock in any case
            self.conn = None
        if self.file is not None:
            self.file.close()  # releases the flock
            self.file = None
