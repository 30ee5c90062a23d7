from __future__ import annotations


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""


class StorageLost(Exception):
    """The study's database stayed out of reach; printed as one line, exit status 1. Nothing is
    lost: the same command resumes the study."""
