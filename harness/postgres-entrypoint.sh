#!/bin/sh
# What the official postgres image's entrypoint does, in small: a first start makes the cluster
# with POSTGRES_USER / POSTGRES_PASSWORD and the database POSTGRES_DB; every start serves it on
# 127.0.0.1 at $PGPORT (5432 by default) and on the local socket, which pg_isready uses; the
# compose file's command (`postgres -c NAME=VALUE ...`) passes its settings on, as there.
set -eu
if [ "${1:-}" = postgres ]; then shift; fi
BIN=/usr/lib/postgresql/15/bin
PORT="${PGPORT:-5432}"
as_postgres() { setpriv --reuid=postgres --regid=postgres --init-groups "$@"; }
mkdir -p "$PGDATA" /var/run/postgresql
chown postgres:postgres "$PGDATA" /var/run/postgresql
chmod 700 "$PGDATA"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    printf '%s\n' "$POSTGRES_PASSWORD" > /tmp/pwfile
    chown postgres /tmp/pwfile
    as_postgres "$BIN/initdb" -D "$PGDATA" -U "$POSTGRES_USER" --pwfile=/tmp/pwfile \
        --auth-host=scram-sha-256 --auth-local=trust --encoding=UTF8 --locale=C.UTF-8 > /dev/null
    rm /tmp/pwfile
    as_postgres "$BIN/pg_ctl" -D "$PGDATA" -o "-c listen_addresses= -p $PORT" -w start > /dev/null
    if [ "$POSTGRES_DB" != postgres ]; then
        as_postgres "$BIN/createdb" -p "$PORT" -U "$POSTGRES_USER" "$POSTGRES_DB"
    fi
    as_postgres "$BIN/pg_ctl" -D "$PGDATA" -w stop > /dev/null
fi
exec setpriv --reuid=postgres --regid=postgres --init-groups \
    "$BIN/postgres" -D "$PGDATA" -c listen_addresses=127.0.0.1 -p "$PORT" "$@"
