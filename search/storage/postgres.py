"""PostgreSQL as real deployments have it: a user may lack privileges, and a database or a user
may have a connection limit. Both are read from the server before anything is created or
trained, so that neither ends in a traceback after the work, or in a half-made schema."""

from __future__ import annotations

import sqlalchemy
from sqlalchemy.pool import NullPool

from search.errors import StorageLost, UsageError
from search.storage.schema import foreign_tables, optuna_schema

WRITES = ("INSERT", "UPDATE", "DELETE")
GRANT = (
    "GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO {user}; "
    "GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO {user}"
)
# Connections a process opens at once: Optuna creates a new schema over two, and a run's slot
# lock holds one beside its storage's.
CONNECTIONS_NEEDED = 3


def check_postgres(url: str, *, writes: bool) -> None:
    """Refuse, in one line saying what to change, a user who may not do what the command does
    (read; or write, and create the schema where it is missing), and a database or user whose
    connection limit leaves no room for this process."""
    engine = sqlalchemy.create_engine(url, poolclass=NullPool, connect_args={"connect_timeout": 10})
    try:
        with engine.connect() as conn:
            user, database = conn.execute(
                sqlalchemy.text("SELECT current_user, current_database()")
            ).one()
            check_room(conn, user, database)
            check_tables(conn, database)
            check_privileges(conn, user, database, writes=writes)
    finally:
        engine.dispose()


def scalar(conn: sqlalchemy.Connection, query: str, **params: object) -> object:
    return conn.execute(sqlalchemy.text(query), params).scalar()


def check_room(conn: sqlalchemy.Connection, user: str, database: str) -> None:
    if scalar(conn, "SELECT rolsuper FROM pg_roles WHERE rolname = current_user"):
        return  # connection limits do not apply to a superuser
    limits = (
        ("database", database, "datconnlimit", "pg_database", "datname", "ALTER DATABASE"),
        ("user", user, "rolconnlimit", "pg_roles", "rolname", "ALTER ROLE"),
    )
    for kind, name, column, catalog, key, alter in limits:
        limit = int(scalar(conn, f"SELECT {column} FROM {catalog} WHERE {key} = :n", n=name))  # type: ignore[arg-type]
        if limit < 0:
            continue  # no limit
        if limit < CONNECTIONS_NEEDED:
            raise UsageError(
                f"PostgreSQL {kind} {name!r} allows {limit} connection(s) (CONNECTION LIMIT); "
                f'a command here needs {CONNECTIONS_NEEDED} at once: {alter} "{name}" '
                "CONNECTION LIMIT 10 (more for several workers)"
            )
        field = "datname" if kind == "database" else "usename"
        used = int(
            scalar(conn, f"SELECT count(*) FROM pg_stat_activity WHERE {field} = :n", n=name)
        )  # type: ignore[arg-type]
        free = limit - used + 1  # this connection closes before the work starts
        if free < CONNECTIONS_NEEDED:
            raise StorageLost(
                f"PostgreSQL {kind} {name!r} has {free} of its {limit} connections free "
                f"(CONNECTION LIMIT) and a command here needs {CONNECTIONS_NEEDED}: wait for "
                "other clients to end, or raise the limit"
            )


def check_tables(conn: sqlalchemy.Connection, database: str) -> None:
    """Refuse, from a read-only look before anything is created, a database where a table has
    one of Optuna's names but not Optuna's columns (another program's `trials`): Optuna would
    create its other tables beside it and then fail. Other programs' tables of other names are
    left alone, and Optuna's made beside them."""
    rows = conn.execute(
        sqlalchemy.text(
            "SELECT table_name, column_name FROM information_schema.columns "
            "WHERE table_schema = current_schema() AND table_name = ANY(:names)"
        ),
        {"names": list(optuna_schema())},
    ).all()
    found: dict[str, set[str]] = {}
    for table, column in rows:
        found.setdefault(table, set()).add(column)
    clash = foreign_tables(found)
    if clash:
        raise UsageError(
            f"PostgreSQL database {database!r} holds another program's table(s) named as "
            f"Optuna's ({', '.join(clash[:5])}); it is left as it is: choose another database"
        )


def check_privileges(
    conn: sqlalchemy.Connection, user: str, database: str, *, writes: bool
) -> None:
    present = [
        t for t in optuna_schema() if scalar(conn, "SELECT to_regclass(:t) IS NOT NULL", t=t)
    ]
    if not present:
        if writes and not scalar(conn, "SELECT has_schema_privilege(current_schema(), 'CREATE')"):
            raise UsageError(
                f"PostgreSQL user {user!r} may not create tables in database {database!r}, and "
                f"the study's tables are not there yet: GRANT CREATE ON SCHEMA public TO {user} "
                "(or create the study with a user that may)"
            )
        return
    for table in present:
        for privilege in ("SELECT", *(WRITES if writes else ())):
            if not scalar(conn, "SELECT has_table_privilege(:t, :p)", t=table, p=privilege):
                raise UsageError(
                    f"PostgreSQL user {user!r} may not {privilege} on table {table} in "
                    f"database {database!r}: {GRANT.format(user=user)} (or use a user that may)"
                )
    if writes:
        sequences = conn.execute(
            sqlalchemy.text(
                "SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace "
                "WHERE c.relkind = 'S' AND n.nspname = current_schema()"
            )
        ).scalars()
        for sequence in sequences:
            if not scalar(conn, "SELECT has_sequence_privilege(:s, 'USAGE')", s=sequence):
                raise UsageError(
                    f"PostgreSQL user {user!r} may not use sequence {sequence} in database "
                    f"{database!r}: {GRANT.format(user=user)} (or use a user that may)"
                )
