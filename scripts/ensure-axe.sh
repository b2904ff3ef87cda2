#!/usr/bin/env bash
# axe-core, from npm, for the accessibility checks of the browser tests (WCAG 2.1 A/AA).
# Installed once into .tools/ (not needed to run the app); npm from Debian's packages when missing.
set -euo pipefail
cd "$(dirname "$0")/.."
VERSION=4.10.3
AXE=.tools/node_modules/axe-core/axe.min.js
if [ -f "$AXE" ] && grep -q "\"version\": \"$VERSION\"" .tools/node_modules/axe-core/package.json; then exit 0; fi
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }
if ! command -v npm >/dev/null 2>&1; then
  echo "[set-up] installing npm from Debian's packages (for axe-core)" >&2
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq npm >/dev/null
fi
mkdir -p .tools
echo "[set-up] axe-core $VERSION from npm into .tools/" >&2
npm install --prefix .tools --no-save --no-audit --no-fund --loglevel=error "axe-core@$VERSION" >/dev/null
test -f "$AXE"
