"""Locks on a study's storage: one owner per file storage, and one slot-taker at a time."""

from __future__ import annotations

import contextlib
import fcntl
import os
import zlib
from collections.abc import Iterator
from pathlib import Path

import sqlalchemy
from sqlalchemy.pool import NullPool

from search.errors import UsageError
from search.storage.retries import with_storage_retries
from search.storage.side_files import open_side_file, read_side_file, replace_file
from search.storage.spec import StorageSpec


@contextlib.contextmanager
def owner_lock(spec: StorageSpec) -> Iterator[None]:
    """Hold a file storage for this run; a second run on the same file is refused, whatever
    name reaches it (a symbolic link, another relative path): the lock is an flock on the
    storage file itself, so it follows the file, and no file a user can delete holds it. The
    `.owner` file beside the real file only tells the holder's pid."""
    path = spec.path
    if path is None:
        yield
        return
    real = path.resolve()
    pid_file = real.with_name(real.name + ".owner")
    with open(real, "rb") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise UsageError(
                f"{path} is in use by another search.run (pid {holder(pid_file)}); "
                "wait for it, or share a study between runs with PostgreSQL"
            ) from None
        with contextlib.suppress(OSError, UsageError):  # the pid is for the message only
            replace_file(pid_file, str(os.getpid()).encode())
        yield


def holder(pid_file: Path) -> str:
    text = (read_side_file(pid_file) or "").strip()
    return text if text.isdigit() else "?"


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
        self.fd: int | None = None
        self.conn: sqlalchemy.engine.Connection | None = None

    def __enter__(self) -> None:
        if self.engine is not None:
            self.conn = with_storage_retries(self.engine.connect, "taking the slot lock")
            self.conn.execute(sqlalchemy.text("SELECT pg_advisory_lock(:k)"), {"k": self.key})
        elif self.spec.kind == "journal":
            assert self.spec.path is not None
            real = self.spec.path.resolve()
            self.fd = open_side_file(real.with_name(real.name + ".slots"))
            fcntl.flock(self.fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        if self.conn is not None:
            with contextlib.suppress(sqlalchemy.exc.SQLAlchemyError):
                self.conn.execute(sqlalchemy.text("SELECT pg_advisory_unlock(:k)"), {"k": self.key})
            self.conn.close()  # closing the session releases the lock in any case
            self.conn = None
        if self.fd is not None:
            os.close(self.fd)  # releases the flock
            self.fd = None
