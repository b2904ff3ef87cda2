#!/usr/bin/env bash
# For the postgis/postgis image (docker-entrypoint-initdb.d, first start only): let a streaming
# replica connect for replication with the database user's password (docker-compose.yml, db-replica).
# An existing database: add the same line to its pg_hba.conf and reload it.
set -euo pipefail
echo "host replication all all scram-sha-256" >> "$PGDATA/pg_hba.conf"
