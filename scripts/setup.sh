#!/usr/bin/env bash
# Idempotent set-up called by `make run` and `make test`: Debian packages, virtualenv, the project,
# and the Node test aid for the TimescaleDB tier. Quick when everything is already there.
set -euo pipefail
cd "$(dirname "$0")/.."

log() { printf '\033[1m[setup]\033[0m %s\n' "$*"; }

# Debian packages: the broker and its clients, PostgreSQL server + contrib (cube, earthdistance),
# Node for the TimescaleDB (PGlite) test tier, Chromium (and a Chinese font) for the dashboard page test,
# openssl (throwaway CA of the TLS broker test), systemd (systemd-analyze verifies the shipped units) and
# wrk (the load generator of `make bench`'s /v1/vacancies: a Python client took the CPU it measured).
packages=(mosquitto mosquitto-clients postgresql postgresql-contrib nodejs npm chromium fonts-wqy-microhei openssl systemd wrk)
missing=()
for pkg in "${packages[@]}"; do
  case "$pkg" in
    nodejs|npm) command -v "${pkg/nodejs/node}" >/dev/null 2>&1 && continue ;;
    chromium) command -v chromium >/dev/null 2>&1 && continue ;;
  esac
  dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q "install ok installed" || missing+=("$pkg")
done
if ((${#missing[@]})); then
  sudo=""; [ "$(id -u)" -eq 0 ] || sudo="sudo"
  log "installing Debian packages: ${missing[*]}"
  $sudo apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi

# The virtualenv, reinstalled only when pyproject.toml changes.
python=${PYTHON:-python3}
if [ ! -x .venv/bin/python ]; then
  log "creating .venv"
  "$python" -m venv .venv
fi
stamp=.venv/.installed-$(sha256sum pyproject.toml | cut -c1-16)
if [ ! -f "$stamp" ]; then
  log "installing the project and its dev tools into .venv"
  .venv/bin/python -m pip install -q --upgrade pip >/dev/null
  if ! .venv/bin/python -m pip install -q -e ".[dev]" > .venv/pip-install.log 2>&1; then
    cat .venv/pip-install.log >&2
    log "pip install failed (log above)"
    exit 1
  fi
  .venv/bin/python -c "import parking_core, aiohttp, asyncpg, psycopg, paho.mqtt"
  rm -f .venv/.installed-*
  touch "$stamp"
fi

# The TimescaleDB test aid (PGlite with TimescaleDB, from npm), reinstalled when its lock changes.
if [ -f tests/timescale/package-lock.json ]; then
  lock_stamp=tests/timescale/node_modules/.installed-$(sha256sum tests/timescale/package-lock.json | cut -c1-16)
  if [ ! -f "$lock_stamp" ]; then
    log "installing the PGlite/TimescaleDB test aid (npm ci)"
    npm ci --prefix tests/timescale --no-audit --no-fund --loglevel=error >/dev/null
    rm -f tests/timescale/node_modules/.installed-*
    touch "$lock_stamp"
  fi
fi
log "ready"
