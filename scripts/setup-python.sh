#!/bin/sh
# Creates .venv and installs the lab with its test tools, at the versions in requirements.lock.
# Re-run only when pyproject.toml or requirements.lock changes.
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
if [ ! -x .venv/bin/python ]; then
  if ! "$PY" -m venv .venv 2>/dev/null; then
    rm -rf .venv
    VER=$("$PY" -c 'import sys; print(f"{sys.version_info[0]}.{sys.version_info[1]}")')
    if command -v apt-get >/dev/null 2>&1; then
      SUDO=""; [ "$(id -u)" -eq 0 ] || SUDO="sudo"
      echo "Python's venv module is missing; installing python$VER-venv..."
      $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q "python$VER-venv" || \
        $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q python3-venv || {
        echo "error: could not install Python's venv module. Run: sudo apt-get install -y python3-venv" >&2; exit 1; }
      "$PY" -m venv .venv
    else
      echo "error: '$PY -m venv' failed. Install Python's venv module and run make again." >&2
      exit 1
    fi
  fi
fi
.venv/bin/python -m pip install -q --upgrade pip
# The lock fixes every version (pip constraints). It was made with one Python (see its header); a
# Python it cannot serve (no wheel of a pinned version, e.g. 3.10) gets the newest compatible versions.
if ! .venv/bin/python -m pip install -q -c requirements.lock -e '.[test]'; then
  echo "note: the versions in requirements.lock do not install with $(.venv/bin/python -V 2>&1);" \
       "installing the newest versions pyproject.toml allows instead." >&2
  .venv/bin/python -m pip install -q -e '.[test]'
fi
touch .venv/.installed
