from __future__ import annotations


class UsageError(Exception):
    """A mistake the user can fix; printed as one line, exit status 2."""
