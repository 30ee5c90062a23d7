"""Optuna's RDB schema as Optuna itself makes it: every table and its columns, read once from a
schema created in memory, so that no list of Optuna's tables is kept by hand."""

from __future__ import annotations

import warnings
from functools import cache

import sqlalchemy
from optuna.storages import RDBStorage


@cache
def optuna_schema() -> dict[str, frozenset[str]]:
    """Each table of Optuna's RDB storage with its column names."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        storage = RDBStorage("sqlite:///:memory:")
    try:
        inspector = sqlalchemy.inspect(storage.engine)
        return {
            table: frozenset(c["name"] for c in inspector.get_columns(table))
            for table in inspector.get_table_names()
        }
    finally:
        storage.engine.dispose()


# Optuna's record of which schema a storage has; stable across Optuna's schema versions.
VERSION_TABLES = ("version_info", "alembic_version")


def foreign_tables(found: dict[str, set[str]]) -> list[str]:
    """The tables of `found` (name -> columns) that are not Optuna's: another name, or one of
    Optuna's names with other columns. A schema another process is creating right now has some
    of Optuna's tables, each whole. A storage with Optuna's version tables is Optuna's, of this
    schema version or another (whose columns differ; Optuna's own version check speaks)."""
    schema = optuna_schema()
    versioned = all(found.get(t) == schema[t] for t in VERSION_TABLES)
    return sorted(
        name if name not in schema else f"{name} (not Optuna's columns)"
        for name, columns in found.items()
        if name not in schema or (schema[name] != columns and not versioned)
    )
