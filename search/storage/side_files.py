"""The files a command keeps beside a study's own (lock files, pid notes, backups), opened as
what they must be: a regular file in the study's folder, never through a link, never a FIFO
that would hang the open. Something else found at one of their names is not ours: it is set
aside (renamed, as it is, beside it) with one line, and never blocks the next run."""

from __future__ import annotations

import contextlib
import errno
import os
import stat
import sys
import time
from collections.abc import Callable
from pathlib import Path

from search.errors import UsageError

KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
    stat.S_IFLNK: "a symbolic link",
}
SET_ASIDE = ".set-aside-"
# O_NOFOLLOW: a link at the name is refused, not followed; O_NONBLOCK: a FIFO does not hang.
SAFE = os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC


def kind_of(mode: int) -> str:
    return KINDS.get(stat.S_IFMT(mode), "not a regular file")


def set_aside(path: Path, why: str) -> str:
    """Rename what is at `path` (the entry itself: a link is not followed) to a name beside it
    that no command reads; returns the line that says so, `why` saying what it was. Where it
    cannot be moved, the one line names it and how to clear it."""
    stamp = time.strftime("%Y%m%d-%H%M%S")
    aside, n = path.with_name(f"{path.name}{SET_ASIDE}{stamp}"), 1
    while os.path.lexists(aside):
        n += 1
        aside = path.with_name(f"{path.name}{SET_ASIDE}{stamp}~{n}")
    try:
        os.rename(path, aside)
    except OSError as e:
        raise UsageError(
            f"{path}: {why}, and it cannot be moved aside ({e.strerror}); remove it and run again"
        ) from None
    return f"{path}: {why}; moved aside to {aside.name}"


def to_stderr(line: str) -> None:
    print(line, file=sys.stderr)


def open_side_file(
    path: Path, *, write: bool = False, say: Callable[[str], None] = to_stderr
) -> int:
    """A file descriptor on the side file `path`, created where missing: opened read-only for
    a lock (an flock needs no write access, so an immutable file still serves), read-write
    where the command records into it. Something other than a regular file at the name is set
    aside first (said through `say`)."""
    flags = SAFE | os.O_CREAT | (os.O_RDWR if write else os.O_RDONLY)
    for _ in range(3):  # a neighbour may put something back between our steps
        with contextlib.suppress(FileNotFoundError):
            mode = os.lstat(path).st_mode
            if not stat.S_ISREG(mode):
                say(set_aside(path, f"{kind_of(mode)} where the study keeps a lock file"))
        try:
            fd = os.open(path, flags, 0o644)
        except OSError as e:
            if e.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EEXIST):
                continue  # replaced since the look above: look again
            raise UsageError(
                f"cannot open {path} ({e.strerror}), one of the study's lock files; make it "
                "writable (chmod u+w, chattr -i) or remove it, and run again"
            ) from None
        if stat.S_ISREG(os.fstat(fd).st_mode):
            return fd
        os.close(fd)
    raise UsageError(f"{path} keeps being replaced by something that is not a file; remove it")


def read_side_file(path: Path, limit: int = 64) -> str | None:
    """The start of a side file's text (a pid note), or None where it is not a regular file of
    ours or cannot be read: a link is not followed, a FIFO does not block."""
    try:
        fd = os.open(path, SAFE | os.O_RDONLY)
    except OSError:
        return None
    try:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            return None
        return os.read(fd, limit).decode(errors="replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def write_new_file(path: Path, data: bytes) -> Path:
    """Write `data` to a new file at `path` (or `path`~N where that is taken), never through a
    link nor over anything already there; a failed write leaves no partial file."""
    target, n = path, 1
    while True:
        try:
            fd = os.open(target, SAFE | os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            break
        except FileExistsError:
            n += 1
            target = path.with_name(f"{path.name}~{n}")
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
    except OSError:
        target.unlink(missing_ok=True)
        raise
    return target


def replace_file(path: Path, data: bytes) -> None:
    """Put a new file with `data` at `path` atomically: written beside it under a fresh name,
    then renamed over it (a rename replaces a link itself, never what it points to)."""
    tmp = write_new_file(path.with_name(f".{path.name}.tmp"), data)
    try:
        os.replace(tmp, path)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
