#!/usr/bin/env bash
# Install what banet-ops needs on Debian 12, idempotently:
#   1. PostgreSQL 15 + PostGIS 3 server packages, gdal-bin and chromium + chromium-driver (apt-get,
#      as root, only when missing);
#   2. the virtual environment .venv (Python 3.11) with the exact versions of requirements.lock
#      and the package itself in editable mode.
# A stamp keyed by the hash of requirements.lock + pyproject.toml makes a second run instant.
set -euo pipefail

cd "$(dirname "$0")/.."
PYTHON=${PYTHON:-python3.11}
VENV=${VENV:-.venv}
PG_MAJOR=15
POSTGIS_CONTROL=/usr/share/postgresql/${PG_MAJOR}/extension/postgis.control
INITDB=/usr/lib/postgresql/${PG_MAJOR}/bin/initdb

say() { printf 'install: %s\n' "$*" >&2; }

# --- system packages ---------------------------------------------------------------------------
missing=()
[ -x "$INITDB" ] || [ -n "${BANET_PG_BIN:-}" ] || missing+=("postgresql-${PG_MAJOR}")
[ -f "$POSTGIS_CONTROL" ] || missing+=("postgresql-${PG_MAJOR}-postgis-3")
command -v ogrinfo >/dev/null || missing+=("gdal-bin")  # ogrinfo/ogr2ogr: the analysts' OGR check (docs/analysts.md)
# a headless browser for the UI screenshot test (tests/journey); skipped cleanly without it
command -v chromium >/dev/null || missing+=("chromium")
command -v chromedriver >/dev/null || missing+=("chromium-driver")
if [ ${#missing[@]} -gt 0 ]; then
    if [ "$(id -u)" -eq 0 ] && command -v apt-get >/dev/null; then
        say "installing ${missing[*]} with apt-get"
        apt-get update -q
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
    else
        say "WARNING: ${missing[*]} missing and not root (or no apt-get): skipping system packages."
        say "         run as root: apt-get update && apt-get install -y ${missing[*]}"
        say "         (the local PostGIS stack and the database tests need them)"
    fi
fi

# --- virtual environment -----------------------------------------------------------------------
stamp="$VENV/.banet-install-stamp"
want=$(cat requirements.lock pyproject.toml | sha256sum | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$want" ] && [ -x "$VENV/bin/banet-ops" ]; then
    exit 0
fi
if ! command -v "$PYTHON" >/dev/null; then
    say "ERROR: expected $PYTHON on PATH, found none; install Python 3.11 (or set PYTHON=/path/to/python3.11)"
    exit 1
fi
if [ ! -x "$VENV/bin/python" ]; then
    say "creating $VENV with $("$PYTHON" --version)"
    "$PYTHON" -m venv "$VENV"
fi
if ! "$VENV/bin/python" -c 'import sys; sys.exit(sys.version_info[:2] != (3, 11))'; then
    say "ERROR: expected Python 3.11 in $VENV, found $("$VENV/bin/python" --version 2>&1); remove $VENV and run make install again"
    exit 1
fi
say "installing requirements.lock into $VENV (a few minutes the first time)"
"$VENV/bin/python" -m pip install -q --disable-pip-version-check -r requirements.lock
"$VENV/bin/python" -m pip install -q --disable-pip-version-check --no-deps -e .
echo "$want" > "$stamp"
say "done: $VENV ready"
