#!/usr/bin/env bash
# What the benchmarks compare against, installed apart from the project:
#  - ogr2ogr (Debian's gdal-bin), beside our importer in bench/ingest.py;
#  - wrk (Debian's wrk), the compiled load generator of bench/ogc.py and bench/exchange.py, and
#    pgbench (Debian ships it with the server, postgresql-MAJOR), which runs a route's very SQL;
#  - tipg in its own virtual environment (.bench/tipg), beside our OGC API in bench/ogc.py
#    (apart, so that its pins never touch the project's dependencies).
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
PY=${PYTHON:-python3}
TIPG_VENV=${TIPG_VENV:-.bench/tipg}
if ! command -v ogr2ogr >/dev/null 2>&1; then
  echo "[bench] installing gdal-bin (ogr2ogr) from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq gdal-bin >/dev/null
fi
if ! command -v wrk >/dev/null 2>&1; then
  echo "[bench] installing wrk from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq wrk >/dev/null
fi
if ! pgbench --version >/dev/null 2>&1; then
  major=$(psql --version | sed -E 's/[^0-9]*([0-9]+).*/\1/')
  echo "[bench] installing pgbench (postgresql-$major) from Debian's packages" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "postgresql-$major" >/dev/null
fi
if [ ! -x "$TIPG_VENV/bin/uvicorn" ]; then
  echo "[bench] installing tipg into $TIPG_VENV" >&2
  "$PY" -m venv "$TIPG_VENV"
  "$TIPG_VENV/bin/python" -m pip install -q --upgrade pip
  "$TIPG_VENV/bin/python" -m pip install -q tipg uvicorn
fi
