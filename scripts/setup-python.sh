#!/bin/sh
# Creates .venv and installs the lab with its test tools, at the versions in requirements.lock.
# Re-run only when pyproject.toml or requirements.lock changes. The steps themselves (one line each,
# with how long they took) are in scripts/setup_python.py; this checks that the Python can run it.
set -eu
PY="${PYTHON:-python3}"
if ! command -v "$PY" >/dev/null 2>&1; then
  echo "error: $PY not found. Install Python 3.10 or newer (Debian/Ubuntu: apt-get install -y python3 python3-venv)." >&2
  exit 1
fi
if ! "$PY" -c 'import sys; sys.exit(sys.version_info < (3, 10))'; then
  echo "error: the lab needs Python 3.10 or newer; $PY is $("$PY" -V 2>&1)." >&2
  exit 1
fi
exec "$PY" scripts/setup_python.py
