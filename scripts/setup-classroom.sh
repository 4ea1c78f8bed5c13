#!/bin/sh
# The classroom's software, for `make classroom-test` (docs/classroom.md does the same on a server):
# one venv every learner can run (the course at requirements.lock's versions, plus JupyterHub from
# PyPI), and configurable-http-proxy from npm. Skips what is already there.
set -eu
VENV="$1"
CHP_PREFIX="$2"
PY="${CLASSROOM_PYTHON:-/usr/bin/python3}"
CHP_VERSION="${CHP_VERSION:-5.3.0}"
umask 022
if [ ! -x "$VENV/bin/jupyterhub" ]; then
  echo "Installing the course and JupyterHub into $VENV (a few minutes, once)..."
  "$PY" -m venv "$VENV"
  "$VENV/bin/pip" install -q -c requirements.lock -e . -r classroom/requirements.txt
fi
if [ ! -x "$CHP_PREFIX/node_modules/.bin/configurable-http-proxy" ]; then
  command -v npm >/dev/null 2>&1 || { echo "error: npm is needed for configurable-http-proxy (apt-get install -y npm)" >&2; exit 1; }
  echo "Installing configurable-http-proxy $CHP_VERSION into $CHP_PREFIX..."
  npm install --silent --prefix "$CHP_PREFIX" "configurable-http-proxy@$CHP_VERSION" >/dev/null
fi
