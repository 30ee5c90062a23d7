"""The journal's write lock, shared with every Optuna process and broken only when its holder
is proven dead.

Optuna's lock is a symbolic link, JOURNAL.lock, made for the time of one append; plain Optuna
(optuna-dashboard saving a note, a notebook, the `optuna` CLI) takes it too. Optuna breaks a
link that has stood for 30 s, whoever holds it. Here, a process of this project first takes an
flock on JOURNAL.appender (the kernel drops it when the process dies, however it dies), then
makes the link and records the link's identity in that file. So when a process holding the
flock finds a link whose identity is the one recorded, the process that made it is dead: it is
removed at once. Any other link belongs to a process this project cannot see: it is waited
for, never broken: said once after a while, and after PATIENCE seconds the command ends in
one line saying how to clear it if its holder is gone.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
import uuid
from collections.abc import Callable
from pathlib import Path

from optuna.storages.journal import JournalFileSymlinkLock

from search.errors import StorageLost
from search.storage.side_files import open_side_file, to_stderr

APPENDER = ".appender"
SAY_AFTER = 10.0  # seconds of waiting on a lock not ours before saying so
# Plain Optuna holds the lock for one append (milliseconds); one held this long has a holder
# that hangs or died, which only its owner can tell.
PATIENCE = 120.0


def identity(st: os.stat_result) -> str:
    """What tells one link from any later one at the same name: its inode and the time it was
    made (a link's mtime; its ctime changes on a rename)."""
    return f"{st.st_dev} {st.st_ino} {st.st_mtime_ns}"


class JournalLock(JournalFileSymlinkLock):
    """Optuna's symbolic-link lock on the journal `journal` (its absolute name), taken and
    released as above; an instance serves one thread at a time, as Optuna's storage uses it."""

    def __init__(self, journal: str, *, say: Callable[[str], None] | None = None) -> None:
        super().__init__(journal, grace_period=None)  # never broken by a timer
        self.journal = journal
        self.link = Path(journal + ".lock")
        self.appender = Path(journal + APPENDER)
        self.say = say or to_stderr
        self.fd: int | None = None

    def acquire(self) -> bool:
        fd = open_side_file(self.appender, write=True, say=self.say)
        fcntl.flock(fd, fcntl.LOCK_EX)  # this project's appenders, one at a time
        self.fd = fd
        try:
            self.wait_for_link(fd)
        except BaseException:
            self.fd = None
            os.close(fd)  # drops the flock; the link, if any, is not ours to remove
            raise
        return True

    def wait_for_link(self, fd: int) -> None:
        waited_since = time.monotonic()
        said = False
        pause = 0.001
        while True:
            try:
                os.symlink(self.journal, self.link)
            except FileExistsError:
                pass
            else:
                try:
                    record(fd, identity(os.lstat(self.link)))
                except BaseException:  # a full disk: the link just made is ours to take back
                    os.unlink(self.link)
                    raise
                return
            if self.remove_if_dead(fd):
                continue
            waited = time.monotonic() - waited_since
            if waited > PATIENCE:
                raise StorageLost(
                    f"{self.link} has been held for {waited:.0f} s by a process that is not "
                    "this project's (optuna-dashboard, a notebook, the optuna CLI); if no such "
                    "process is alive, remove it and re-run the same command"
                )
            if not said and waited > SAY_AFTER:
                said = True
                self.say(
                    f"waiting for {self.link}: a process that is not this project's "
                    "(optuna-dashboard, a notebook, the optuna CLI) holds the journal's lock; "
                    f"if no such process is alive, remove {self.link}"
                )
            time.sleep(pause)
            pause = min(2 * pause, 0.25)

    def remove_if_dead(self, fd: int) -> bool:
        """Remove the link when it is the one recorded by a process of ours, which must be dead
        since this process holds the flock that process held while the link stood."""
        try:
            found = identity(os.lstat(self.link))
        except FileNotFoundError:
            return True  # released meanwhile
        if found != read_record(fd):
            return False
        moved = self.link.with_name(f"{self.link.name}.{uuid.uuid4().hex}.dead")
        try:
            os.rename(self.link, moved)  # atomic: only this very link is taken away
        except FileNotFoundError:
            return True
        if identity(os.lstat(moved)) != found:  # replaced between our look and the rename:
            with contextlib.suppress(FileExistsError):  # put back, over nothing newer
                os.link(moved, self.link, follow_symlinks=False)
            os.unlink(moved)
            return False
        os.unlink(moved)
        record(fd, "")
        self.say(f"{self.link} was left by a process of this project that died holding it: removed")
        return True

    def release(self) -> None:
        fd, self.fd = self.fd, None
        if fd is None:
            return  # never acquired: the link, if any, is someone else's
        try:
            # A plain Optuna process breaks a lock 30 s old whoever holds it: then ours is gone
            # already (and the link there, if any, is that process's): nothing to release.
            with contextlib.suppress(FileNotFoundError):
                if identity(os.lstat(self.link)) == read_record(fd):
                    moved = self.link.with_name(f"{self.link.name}.{uuid.uuid4().hex}.release")
                    os.rename(self.link, moved)
                    os.unlink(moved)
            record(fd, "")
        finally:
            os.close(fd)


def check_appender(journal: str) -> None:
    """Open the appender file as an append will, before a run starts: what is not ours there is
    set aside now, and one that cannot be opened (immutable, not writable) ends the command in
    one line before anything else is said."""
    os.close(open_side_file(Path(journal + APPENDER), write=True))


def record(fd: int, text: str) -> None:
    os.ftruncate(fd, 0)
    os.pwrite(fd, text.encode(), 0)


def read_record(fd: int) -> str:
    return os.pread(fd, 256, 0).decode(errors="replace").strip()
