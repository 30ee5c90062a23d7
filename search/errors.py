"""The project's own errors: each is one line naming the fix. Anything else is a bug and keeps
its traceback."""

from __future__ import annotations

import errno

from data import DataError
from models import DeviceError, ModelFileError


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class StorageLost(Exception):
    """The study's database stayed out of reach; printed as one line, exit status 1. Nothing is
    lost: the same command resumes the study."""


class StorageDamaged(Exception):
    """The study's file is damaged where no repair is safe; printed as one line (with the
    command that keeps what precedes the damage), exit status 1. The file is not changed."""


FULL = {errno.ENOSPC, errno.EDQUOT}


def full_disk(error: OSError, *, resumes: bool = True) -> str:
    """The one line for a write that found no space (exit 1), else "" (not this fault); with
    `resumes` off, only what happened, for a caller to say what it means."""
    if error.errno not in FULL:
        return ""
    where = f" writing {error.filename}" if error.filename else ""
    said = f"the disk is full ({error.strerror}{where})"
    if not resumes:
        return said
    return (
        f"{said}; free some space and re-run the same command: every finished trial is kept, "
        "the interrupted one is run again"
    )


# A mistake the user can fix (exit status 2).
USER_ERRORS = (UsageError, DataError, DeviceError, ModelFileError)
# An environment fault, not a mistake: the database went away, a file is damaged (status 1).
FAULTS = (StorageLost, StorageDamaged)
