#!/usr/bin/env bash
# The system packages the project needs before its virtual environment: Python with venv, a compiler.
set -euo pipefail
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
missing=()
PY=${PYTHON:-python3}
command -v "$PY" >/dev/null 2>&1 || missing+=(python3)
"$PY" -c "import venv, ensurepip" >/dev/null 2>&1 || missing+=(python3-venv)
# Headless Chromium for the browser tests (Debian's package; Playwright drives it by its path).
[ -x /usr/bin/chromium ] || missing+=(chromium)
if [ ${#missing[@]} -gt 0 ]; then
  if command -v apt-get >/dev/null 2>&1; then
    echo "[set-up] installing ${missing[*]} from Debian's packages" >&2
    as_root apt-get update -qq
    as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${missing[@]}" >/dev/null
  else
    echo "[set-up] please install: ${missing[*]}" >&2; exit 1
  fi
fi
"$PY" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "commons-map needs Python 3.11 or newer")'
