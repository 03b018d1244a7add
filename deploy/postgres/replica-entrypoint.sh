#!/bin/bash
# The streaming replica: on first start, a base backup of the primary (pg_basebackup -R writes
# primary_conninfo and standby.signal, so the server starts as a hot standby streaming from the
# slot); then the server itself. Runs as the postgres user.
set -euo pipefail
: "${PGDATA:=/var/lib/postgresql/data}"
: "${PRIMARY_HOST:=postgres-primary}"
: "${PRIMARY_PORT:=5432}"
: "${REPLICATION_SLOT:=replica1}"
if [ ! -s "$PGDATA/PG_VERSION" ]; then
    export PGPASSWORD
    PGPASSWORD=$(cat "${REPLICATION_PASSWORD_FILE:?set REPLICATION_PASSWORD_FILE}")
    until pg_isready --host "$PRIMARY_HOST" --port "$PRIMARY_PORT" --quiet; do
        echo "replica: waiting for $PRIMARY_HOST:$PRIMARY_PORT"; sleep 1
    done
    rm -rf "${PGDATA:?}"/*
    pg_basebackup --host "$PRIMARY_HOST" --port "$PRIMARY_PORT" --username replicator \
        --pgdata "$PGDATA" --wal-method stream --slot "$REPLICATION_SLOT" \
        --write-recovery-conf --checkpoint fast --progress
    chmod 0700 "$PGDATA"
    unset PGPASSWORD
fi
exec postgres -D "$PGDATA" -c hot_standby=on -c hot_standby_feedback=on "$@"
