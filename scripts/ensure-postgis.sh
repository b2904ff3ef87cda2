#!/usr/bin/env bash
# Make sure a PostgreSQL server with PostGIS answers, and record its URL in .env.
#
# 1. COMMONS_DATABASE_URL set in the environment: use it as it is.
# 2. Else a server on 127.0.0.1:5432 that lets user postgres in: use it (install PostGIS for
#    that server's major version from Debian's packages when it lacks the extension).
# 3. Else start a private cluster in the project (.pgdata, port 54329), installing PostgreSQL
#    and PostGIS first when absent. As root it runs as the postgres user (PostgreSQL refuses
#    to run as root); as an ordinary user it runs as that user, using sudo only for apt.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PROBE_HOST=${COMMONS_PROBE_HOST:-127.0.0.1}
PROBE_PORT=${COMMONS_PROBE_PORT:-5432}
PRIVATE_PORT=${COMMONS_PRIVATE_PORT:-54329}
PGDATA_DIR=${COMMONS_PGDATA:-$ROOT/.pgdata}

say() { printf '\033[1m[set-up]\033[0m %s\n' "$*" >&2; }
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
apt_updated=""
apt_install() {
  if [ -z "$apt_updated" ]; then as_root apt-get update -qq; apt_updated=1; fi
  say "installing $* from Debian's packages"
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "$@" >/dev/null
}

ENV_FILE=${COMMONS_ENV_FILE:-$ROOT/.env}
write_env() {
  local url=$1
  touch "$ENV_FILE"
  grep -v '^COMMONS_DATABASE_URL=' "$ENV_FILE" > "$ENV_FILE.tmp" || true
  echo "COMMONS_DATABASE_URL=$url" >> "$ENV_FILE.tmp"
  mv "$ENV_FILE.tmp" "$ENV_FILE"
  say "database: $url (written to $ENV_FILE)"
}

if [ -n "${COMMONS_DATABASE_URL:-}" ]; then
  say "using COMMONS_DATABASE_URL from the environment"
  exit 0
fi

command -v psql >/dev/null 2>&1 || apt_install postgresql-client

server_major() {  # $1 host, $2 port
  psql -h "$1" -p "$2" -U postgres -d postgres -Atqc "SELECT current_setting('server_version_num')::int / 10000" 2>/dev/null
}
has_postgis() {
  [ "$(psql -h "$1" -p "$2" -U postgres -d postgres -Atqc "SELECT count(*) FROM pg_available_extensions WHERE name = 'postgis'" 2>/dev/null)" = 1 ]
}
ensure_postgis_for() {  # $1 host $2 port
  if ! has_postgis "$1" "$2"; then
    local major; major=$(server_major "$1" "$2")
    apt_install "postgresql-$major-postgis-3"
    has_postgis "$1" "$2" || { say "PostGIS still missing on $1:$2"; exit 1; }
  fi
}

if major=$(server_major "$PROBE_HOST" "$PROBE_PORT") && [ -n "$major" ]; then
  say "PostgreSQL $major answers on $PROBE_HOST:$PROBE_PORT"
  ensure_postgis_for "$PROBE_HOST" "$PROBE_PORT"
  write_env "postgresql+psycopg://postgres@$PROBE_HOST:$PROBE_PORT/commons_map"
  exit 0
fi

# --- a private cluster in the project --------------------------------------------------------
pg_bin() { ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1; }
if [ -z "$(pg_bin)" ]; then
  apt_install postgresql
fi
BIN=$(pg_bin)
MAJOR=$(basename "$(dirname "$BIN")")
[ -e "/usr/share/postgresql/$MAJOR/extension/postgis.control" ] || apt_install "postgresql-$MAJOR-postgis-3"

RUN=()
if [ "$(id -u)" = 0 ]; then
  RUN=(runuser -u postgres --)
  # The postgres user must reach the data folder: fall back to /var/lib when the project can't be reached.
  if ! runuser -u postgres -- test -x "$(dirname "$PGDATA_DIR")"; then
    PGDATA_DIR=/var/lib/commons-map/pgdata-$(echo "$ROOT" | md5sum | cut -c1-8)
  fi
  mkdir -p "$PGDATA_DIR"; chown postgres:postgres "$PGDATA_DIR"; chmod 700 "$PGDATA_DIR"
fi
SOCKDIR="$PGDATA_DIR"
if [ ! -s "$PGDATA_DIR/PG_VERSION" ]; then
  say "creating a private PostgreSQL $MAJOR cluster in $PGDATA_DIR"
  "${RUN[@]}" "$BIN/initdb" -D "$PGDATA_DIR" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
fi
if ! "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDATA_DIR" status >/dev/null 2>&1; then
  say "starting the private cluster on 127.0.0.1:$PRIVATE_PORT"
  "${RUN[@]}" "$BIN/pg_ctl" -D "$PGDATA_DIR" -w -l "$PGDATA_DIR/server.log" \
    -o "-p $PRIVATE_PORT -c listen_addresses=127.0.0.1 -c unix_socket_directories=$SOCKDIR" start >/dev/null
fi
write_env "postgresql+psycopg://postgres@127.0.0.1:$PRIVATE_PORT/commons_map"
