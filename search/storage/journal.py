"""A journal file's integrity: a torn last line cut off, damage found.

Optuna's journal is one JSON operation per line, appended under a lock (a symbolic link).
"""

from __future__ import annotations

import contextlib
import json
import os
import stat
import time
from pathlib import Path

from search.errors import UsageError
from search.storage.journal_lock import JournalLock
from search.storage.side_files import kind_of, set_aside, write_new_file


def journal_name(path: Path) -> str:
    """The journal's absolute path, as Optuna is given it: its lock is a symbolic link to this
    name, and a relative one dangles from inside the journal's folder."""
    return str(path.resolve())


HEAD_BYTES = 1 << 16  # a journal's first operation (its study's creation) is far shorter
TAIL_BYTES = 1 << 20  # and so is its last


def check_journal_file(path: Path) -> None:
    """Refuse a non-empty file whose first line is not an Optuna journal operation (a log, a
    document), reading at most HEAD_BYTES of it."""
    with open(path, "rb") as f:
        head = f.read(HEAD_BYTES)
    if head:
        line = head.split(b"\n", 1)[0]
        try:
            operation = json.loads(line)
            ours = isinstance(operation, dict) and "op_code" in operation
        except ValueError:  # a first write torn by a crash: the start of an operation
            ours = b"\n" not in head and head.startswith(b'{"op_code":')
        if not ours:
            raise UsageError(
                f"{path} is not an Optuna journal (its first line is not a journal operation); "
                "it is left as it is: choose another --storage"
            )


def clear_lock_path(path: Path) -> str | None:
    """The journal's lock is a symbolic link or nothing; anything else at its name (a file, a
    folder) would block every write: it is set aside, and the line saying so returned."""
    lock = Path(journal_name(path) + ".lock")
    with contextlib.suppress(FileNotFoundError):
        mode = os.lstat(lock).st_mode
        if not stat.S_ISLNK(mode):
            return set_aside(lock, f"{kind_of(mode)} where the journal's lock goes")
    return None


def torn_tail(path: Path) -> int | None:
    """Where an incomplete or unreadable last line starts, from a read of the file's end only;
    None when the last line is whole (or the file is empty)."""
    size = path.stat().st_size
    if size == 0:
        return None
    start = max(0, size - TAIL_BYTES)
    with open(path, "rb") as f:
        f.seek(start)
        data = f.read()
    if data.endswith(b"\n"):
        keep = data.rfind(b"\n", 0, len(data) - 1) + 1
        try:
            json.loads(data[keep:])
            return None
        except ValueError:
            return start + keep
    return start + data.rfind(b"\n") + 1


def cut_torn_tail(path: Path) -> str | None:
    """A journal whose last line is incomplete or unreadable (a crash or a full disk in the
    middle of a write) is cut back to its last good line, under the journal's own lock, and the
    cut bytes are kept beside it: Optuna skips such a line on reading, but a write after it
    would bury it mid-file, and then no read succeeds. Returns what was done, in one line.
    Nothing is locked or written where the tail is whole (a read-only mount stays readable)."""
    if not path.is_file() or torn_tail(path) is None:
        return None
    lock = JournalLock(journal_name(path))
    lock.acquire()
    try:
        with open(path, "rb+") as f:
            data = f.read()
            keep = data.rfind(b"\n", 0, len(data) - 1) + 1  # where the last line starts
            if data.endswith(b"\n"):
                try:
                    json.loads(data[keep:])
                    return None  # a whole, readable last line
                except ValueError:
                    pass
            else:
                keep = data.rfind(b"\n") + 1
            # a full disk: no half-written copy is left, the journal is as it was
            backup = write_new_file(
                path.with_name(f"{path.name}.torn-{time.strftime('%Y%m%d-%H%M%S')}"), data[keep:]
            )
            f.truncate(keep)
            f.flush()
            os.fsync(f.fileno())
    finally:
        lock.release()
    return (
        f"{path} ended in an incomplete line ({len(data) - keep} bytes, from a crash or a full "
        f"disk): cut off and kept in {backup}"
    )


def find_damage(path: Path) -> str | None:
    """A line that is not one JSON operation, where the torn-tail repair cannot reach (inside
    the file): Optuna stops reading there, so every read of the study would fail. Nothing past
    it can be trusted to apply in order, so the file is left as it is and the one line returned
    says how to keep what comes before it."""
    if not path.is_file():
        return None
    with open(path, "rb") as f:
        lines = f.readlines()
    if lines and not lines[-1].endswith(b"\n"):
        lines.pop()  # being appended by a live worker right now (a torn one was cut already)
    for number, line in enumerate(lines, start=1):
        try:
            operation = json.loads(line)
            if isinstance(operation, dict) and "op_code" in operation:
                continue
            why = "not a journal operation"
        except ValueError as e:
            why = str(e).split(":")[0].lower()
        kept = f"{path.stem}-to-line-{number - 1}{path.suffix}"
        return (
            f"{path} is damaged at line {number} of {len(lines)} ({why}), so Optuna cannot "
            f"read the study; it is left as it is. To keep the {number - 1} operations before "
            f"it: head -n {number - 1} {path} > {path.with_name(kept)}"
        )
    return None
