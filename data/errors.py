from __future__ import annotations


class DataError(Exception):
    """A data source is missing, corrupt or too small; the message says how to fix it."""
