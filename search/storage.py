"""Where studies live: SQLite and journal files under studies/, or PostgreSQL.

File storages belong to one `search.run` at a time (search.locks), so any trial still RUNNING
when a run starts is stale. PostgreSQL is shared by workers on many machines and relies on
heartbeats instead.
"""

from __future__ import annotations

import contextlib
import os
import sqlite3
import sys
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend

from search.errors import StorageDamaged, UsageError
from search.journal import cut_torn_tail, find_damage, journal_name
from search.paths import STUDIES_DIR

JOURNAL_SUFFIXES = (".journal", ".log")
MAX_RETRY = 3  # a trial whose worker died is run again at most this many times
# Errors of two processes creating the same new schema at once (SQLite, PostgreSQL): the loser
# finds a table or the version row already there. Opening again then finds the schema complete.
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")
SCHEMA_ATTEMPTS = 5
OPTUNA_TABLES = {"studies", "trials", "alembic_version", "version_info"}


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
    def shown(self) -> str:
        """The URL as the project prints and stores it: a password is masked."""
        return mask_password(self.url)

    @property
    def shared(self) -> bool:
        """Whether several processes may write to it."""
        return self.kind != "sqlite"


def mask_password(text: str) -> str:
    """A database URL with its password as ***, or the text as it is when it is not one."""
    if "://" not in text:
        return text
    try:
        url = sqlalchemy.engine.make_url(text)
    except (sqlalchemy.exc.ArgumentError, ValueError):
        return text
    return url.render_as_string(hide_password=True) if url.password else text


def mask_argv(args: list[str]) -> list[str]:
    """Command-line words with any database password masked (`--storage=URL` included)."""
    out = []
    for a in args:
        flag, eq, value = a.partition("=")
        out.append(
            f"{flag}={mask_password(value)}" if eq and a.startswith("--") else mask_password(a)
        )
    return out


def parse_storage(text: str) -> StorageSpec:
    """A --storage value: sqlite:///PATH, postgresql[+psycopg]://..., or PATH.journal."""
    if "://" in text:
        scheme, rest = text.split("://", 1)
        if scheme == "sqlite":
            if not rest.startswith("/") or rest == "/":
                raise UsageError(
                    f"--storage {text}: write sqlite:///relative.db or sqlite:////abs.db"
                )
            if rest.strip("/") in (":memory:", ""):
                raise UsageError(
                    f"--storage {text}: an in-memory database loses every trial at exit; "
                    "write sqlite:///FILE.db"
                )
            return StorageSpec("sqlite", text)
        if scheme in ("postgresql", "postgres", "postgresql+psycopg"):
            url = "postgresql+psycopg://" + rest
            try:
                parsed = sqlalchemy.engine.make_url(url)
            except sqlalchemy.exc.ArgumentError:
                raise UsageError(f"--storage {text}: malformed PostgreSQL URL") from None
            shown = mask_password(text)
            if not parsed.database:
                raise UsageError(f"--storage {shown}: name the database, e.g. .../optuna")
            if "@" in (parsed.host or ""):
                raise UsageError(
                    f"--storage {shown}: more than one '@'; write an '@' in the password as %40"
                )
            return StorageSpec("postgresql", url)
        raise UsageError(
            f"--storage {text}: unknown scheme {scheme!r}; use sqlite:///FILE.db, "
            "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
        )
    path = os.path.expanduser(text)  # a shell leaves ~ in --storage=~/x.journal
    if text.endswith(JOURNAL_SUFFIXES):
        return StorageSpec("journal", path)
    if text.endswith((".db", ".sqlite", ".sqlite3")):
        return StorageSpec("sqlite", f"sqlite:///{path}")
    raise UsageError(
        f"--storage {text}: not a storage; use sqlite:///FILE.db, "
        "postgresql+psycopg://USER@HOST:PORT/DB or a journal file FILE.journal"
    )


@dataclass(frozen=True)
class StorageChoice:
    """Where a run keeps its study, and how many worker processes that storage takes."""

    spec: StorageSpec
    workers: int
    default: bool  # chosen by this project (no --storage): commands it prints omit --storage
    note: str | None = None  # said once the run starts


def existing_file(study: str) -> StorageSpec | None:
    """The study's own file under studies/ (NAME.db or NAME.journal), if there is one."""
    db, journal = STUDIES_DIR / f"{study}.db", STUDIES_DIR / f"{study}.journal"
    if db.exists() and journal.exists():
        raise UsageError(f"both {db} and {journal} exist; choose one with --storage")
    if db.exists():
        return StorageSpec("sqlite", f"sqlite:///{db}")
    if journal.exists():
        return StorageSpec("journal", str(journal))
    return None


def choose_storage(
    study: str, flag: str | None, *, workers: int, workers_given: bool
) -> StorageChoice:
    """The storage of a search run: --storage, else the study's file under studies/, else a new
    studies/NAME.db for one worker or studies/NAME.journal for several. SQLite takes one
    process: asked for by default it runs one worker and says so; asked for with --workers K
    it is refused."""
    if flag is None:
        spec = existing_file(study) or (
            StorageSpec("journal", str(STUDIES_DIR / f"{study}.journal"))
            if workers > 1
            else StorageSpec("sqlite", f"sqlite:///{STUDIES_DIR / f'{study}.db'}")
        )
        if not spec.shared and workers > 1:
            note = (
                f"{spec.path} is SQLite, which one process only may write: running 1 worker "
                "(use --storage FILE.journal or PostgreSQL for several)"
            )
            return StorageChoice(spec, 1, default=True, note=note)
        return StorageChoice(spec, workers, default=True)
    spec = parse_storage(flag)
    if spec.shared or workers == 1:
        return StorageChoice(spec, workers, default=False)
    if not workers_given:
        return StorageChoice(
            spec, 1, default=False, note=f"{flag} is SQLite: running 1 worker, not {workers}"
        )
    raise UsageError(
        f"--storage {flag} is SQLite, which one process only may write; "
        f"use --workers 1, a journal file (studies/NAME.journal) or PostgreSQL for {workers}"
    )


def find_storage(study: str, flag: str | None) -> StorageSpec:
    """The storage of an existing study, for the commands that read one."""
    if flag is not None:
        return parse_storage(flag)
    spec = existing_file(study)
    if spec is None:
        raise UsageError(
            f"no study {study!r} under {STUDIES_DIR}/ ({study}.db or {study}.journal); "
            "run python -m search.run first or pass --storage"
        )
    return spec


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
