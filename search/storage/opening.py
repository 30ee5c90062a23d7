"""Opening a study's storage: file storages belong to one `search.run` at a time
(search.storage.locks), so any trial still RUNNING when a run starts is stale; PostgreSQL is
shared by workers on many machines and relies on heartbeats instead."""

from __future__ import annotations

import contextlib
import copy
import os
import re
import sqlite3
import stat
import sys
import time
import warnings
from pathlib import Path

import optuna
import sqlalchemy
from optuna.storages import JournalStorage, RDBStorage, RetryHeartbeatStaleTrialCallback
from optuna.storages.journal import JournalFileBackend
from optuna.trial import FrozenTrial

from search.errors import StorageDamaged, StorageLost, UsageError, full_disk
from search.storage.journal import (
    check_journal_file,
    clear_lock_path,
    cut_torn_tail,
    find_damage,
    journal_name,
)
from search.storage.journal_lock import JournalLock, check_appender
from search.storage.postgres import check_postgres
from search.storage.schema import foreign_tables
from search.storage.spec import StorageSpec

MAX_RETRY = 3  # a trial whose worker died is run again at most this many times
# Errors of two processes creating the same new schema at once (SQLite, PostgreSQL): the loser
# finds a table or the version row already there. Opening again then finds the schema complete.
SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "duplicate key value")
SCHEMA_ATTEMPTS = 5


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
    """Refuse, from a read-only look before anything is written, an SQLite file that is not an
    Optuna storage: every table must be one of Optuna's, with Optuna's columns (a schema another
    process is creating right now has some of them)."""
    try:
        with contextlib.closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            names = [
                row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")
            ]
            tables = {
                name: {
                    row[0] for row in db.execute("SELECT name FROM pragma_table_info(?)", (name,))
                }
                for name in names
            }
    except sqlite3.OperationalError as e:
        if "locked" not in str(e):
            raise UsageError(f"{path} cannot be read as an SQLite database ({e})") from None
        raise UsageError(
            f"{path} is locked by another program ({e}); wait for it to finish, or choose "
            "another --storage"
        ) from None
    except sqlite3.DatabaseError as e:
        raise UsageError(
            f"{path} is not an SQLite database ({e}); choose another --storage"
        ) from None
    foreign = foreign_tables(tables)
    if foreign:
        shown = ", ".join(foreign[:5])
        raise UsageError(
            f"{path} is another program's SQLite database (tables: {shown}); it is left as it "
            "is: choose another --storage"
        )


def check_writable(path: Path) -> None:
    """A study file the command records into must take writes (an immutable or read-only
    file would fail at the first trial's write)."""
    try:
        with open(path, "ab"):
            pass
    except OSError as e:
        raise UsageError(
            f"cannot write to {path} ({e.strerror}): the command records the study there; "
            "make it writable (chmod u+w, chattr -i) and run again, or choose another --storage"
        ) from None


FILE_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}


def check_store_file(spec: StorageSpec) -> None:
    """Decide from a read-only look, before anything is written, that a file storage's path is
    a new store (nothing there yet), or a regular file holding a study storage of ours;
    anything else is refused in one line naming the file and why."""
    path = spec.path
    if path is None:
        return
    if not path.exists():  # nothing there (or a link to nothing yet): a new store
        return
    mode = os.stat(path).st_mode
    if not stat.S_ISREG(mode):
        kind = FILE_KINDS.get(stat.S_IFMT(mode), "not a regular file")
        raise UsageError(f"{path} is {kind}, not a study file; choose another --storage")
    if spec.kind == "sqlite":
        check_sqlite_file(path)
    elif spec.kind == "journal":
        check_journal_file(path)


def open_storage(
    spec: StorageSpec,
    *,
    create: bool = True,
    heartbeat: int = 20,
    pool_size: int = 2,
    writes: bool = True,
) -> optuna.storages.BaseStorage:
    """Open a storage. RDB storages get heartbeats; stale trials are failed and retried. A
    journal's torn last line is cut off first (and said on stderr) where the opener `writes`;
    a reader leaves the file untouched (Optuna skips a torn last line). On PostgreSQL the
    user's privileges and the connection limits are checked first (search.storage.postgres)."""
    path = spec.path
    if path is not None:
        _prepare_parent(path, create=create)
    check_store_file(spec)
    if path is not None and writes and path.exists():
        check_writable(path)
    if spec.kind == "journal" and path is not None:
        try:
            aside = clear_lock_path(path) if writes else None
            if aside:
                print(aside, file=sys.stderr)
            if writes:
                check_appender(journal_name(path))
            repaired = cut_torn_tail(path) if writes else None
            damage = find_damage(path)
        except OSError as e:
            if full_disk(e):  # a fault, not a mistake: the same command resumes once freed
                raise StorageLost(f"cannot repair {path}: {full_disk(e)}") from None
            raise UsageError(f"cannot repair {path}: {e.strerror}") from None
        if repaired:
            print(repaired, file=sys.stderr)
        if damage:
            raise StorageDamaged(damage)
    if spec.kind == "postgresql":
        try:
            check_postgres(spec.url, writes=writes)
        except sqlalchemy.exc.SQLAlchemyError as e:
            raise storage_error(spec, e) from None
    new_file = spec.kind == "sqlite" and path is not None and not path.exists()
    try:
        with warnings.catch_warnings():
            return _open(spec, path, heartbeat, pool_size)
    except UsageError as e:
        if new_file and path is not None:  # leave no file Optuna could not load behind
            for left in (path, path.with_name(path.name + "-journal")):
                left.unlink(missing_ok=True)
        if "disk is full" in str(e) or "disk I/O error" in str(e):
            raise StorageLost(
                f"{path}: the disk is full; free some space and re-run the same command"
            ) from None
        raise


def _open(
    spec: StorageSpec, path: Path | None, heartbeat: int, pool_size: int
) -> optuna.storages.BaseStorage:
    warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
    try:
        if spec.kind == "journal":
            assert path is not None
            name = journal_name(path)
            return JournalStorage(JournalFileBackend(name, lock_obj=JournalLock(name)))
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
    except RuntimeError as e:
        if SCHEMA_VERSION not in str(e):
            raise
        raise UsageError(schema_version(spec, str(e))) from None


SCHEMA_VERSION = "compatible with the table schema"  # Optuna's RuntimeError, in its words


def schema_version(spec: StorageSpec, message: str) -> str:
    """One line for an Optuna storage of another schema version than this Optuna's."""
    made = re.search(r"set up by optuna ([^)\s]+)", message)
    by = f"optuna {made[1]}" if made else "another optuna"
    if "optuna storage upgrade" in message:
        return (
            f"{spec.shown} was made by {by}, an older storage schema than optuna "
            f"{optuna.__version__} reads; back it up, then upgrade it: optuna storage upgrade "
            f"--storage '{spec.shown}'"
        )
    return (
        f"{spec.shown} was made by {by}, a newer storage schema than optuna "
        f"{optuna.__version__} reads; open it with that optuna version, or choose another "
        "--storage"
    )


HEARTBEAT_REASON = "its worker stopped beating: killed, or cut off from the database"  # fail_reason


class Retry(RetryHeartbeatStaleTrialCallback):
    """Optuna's retry of a failed trial (its parameters queued again, `failed_trial` and
    `retry_history` in the retry's system attributes), whose retry does not inherit the failed
    attempt's `fail_reason`: it records why it was queued again as `retry_of_reason`, the
    failed attempt's reason (for a trial the heartbeat check failed, that its worker went
    silent)."""

    def __call__(self, study: optuna.Study, trial: FrozenTrial) -> None:
        copied = copy.deepcopy(trial)
        attrs = dict(copied.user_attrs)
        attrs["retry_of_reason"] = attrs.pop("fail_reason", HEARTBEAT_REASON)
        copied.user_attrs = attrs
        super().__call__(study, copied)


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
                heartbeat_stale_trial_callback=Retry(max_retry=MAX_RETRY),
            )
        except sqlalchemy.exc.DatabaseError as e:
            if attempt == SCHEMA_ATTEMPTS or not any(m in str(e) for m in SCHEMA_RACE):
                raise
            time.sleep(0.1 * attempt)  # another process is creating the schema
            attempt += 1
