#!/bin/bash
# Run once by the postgres image when it initialises the primary's data directory
# (/docker-entrypoint-initdb.d): the role and the physical slot the streaming replica uses,
# and a pg_hba line that lets it connect for replication with a password.
set -euo pipefail
replication_password=$(cat "${REPLICATION_PASSWORD_FILE:?set REPLICATION_PASSWORD_FILE}")
psql -v ON_ERROR_STOP=1 --username "$POSTGRES_USER" --dbname "$POSTGRES_DB" \
     -v password="$replication_password" <<'SQL'
CREATE ROLE replicator WITH REPLICATION LOGIN PASSWORD :'password';
SELECT pg_create_physical_replication_slot('replica1');
SQL
echo "host replication replicator all scram-sha-256" >> "$PGDATA/pg_hba.conf"
