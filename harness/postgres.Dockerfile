# PostgreSQL for the compose tests, on the tests' local Debian base (no registry is reachable):
# Debian's postgresql-15 with a small entrypoint in place of the official image's.
ARG BASE_IMAGE
FROM ${BASE_IMAGE}
COPY postgres-entrypoint.sh /usr/local/bin/postgres-entrypoint.sh
ENV PGDATA=/var/lib/postgresql/data
ENTRYPOINT ["/usr/local/bin/postgres-entrypoint.sh"]
