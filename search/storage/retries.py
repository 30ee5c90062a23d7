"""Riding out a database restart: storage calls are tried again for about a minute."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import TypeVar

import optuna
import sqlalchemy

from search.errors import StorageLost
from search.storage.opening import error_detail

T = TypeVar("T")
STORAGE_RETRIES = 12  # with 5 s between tries: a minute to ride out a database restart
# What a storage raises while its database is down or restarting.
STORAGE_ERRORS = (sqlalchemy.exc.OperationalError, optuna.exceptions.StorageInternalError)


def with_storage_retries(action: Callable[[], T], what: str) -> T:
    for attempt in range(STORAGE_RETRIES):
        try:
            return action()
        except STORAGE_ERRORS as e:
            if "disk is full" in error_detail(e.__cause__ or e):  # waiting will not free space
                raise StorageLost(
                    f"the disk is full while {what}; free some space and re-run the same "
                    "command: every finished trial is kept"
                ) from None
            if attempt == STORAGE_RETRIES - 1:
                raise StorageLost(
                    f"lost the study storage while {what} ({error_detail(e.__cause__ or e)}); "
                    "re-run the same command to resume"
                ) from None
            print(f"storage unreachable while {what}; retrying in 5 s", file=sys.stderr)
            time.sleep(5)
    raise AssertionError("unreachable")
