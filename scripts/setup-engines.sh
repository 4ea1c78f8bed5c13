#!/bin/sh
# Installs the engines the lab runs (redis-server, memcached) if they are not there yet.
# Debian/Ubuntu: apt-get (as root, or with sudo). macOS: Homebrew. Otherwise: says what to run.
# Installing never starts the system's own redis/memcached services: the lab runs its own.
set -eu

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/bin/$1" ] || [ -x "/opt/homebrew/bin/$1" ]; }

redis_ok() { [ -n "${ELASTICACHE_LAB_REDIS_SERVER:-}" ] || have redis-server || have valkey-server; }
memcached_ok() { [ -n "${ELASTICACHE_LAB_MEMCACHED:-}" ] || have memcached; }
extras_ok() { [ "$(uname)" = Darwin ] || have redis-cli; }

if redis_ok && memcached_ok && extras_ok; then
  exit 0
fi

if [ "$(uname)" = Darwin ]; then
  if have brew; then
    echo "Installing redis and memcached with Homebrew..."
    brew install redis memcached
    exit 0
  fi
  echo "error: redis-server and memcached are needed. Install Homebrew (https://brew.sh), then run: brew install redis memcached" >&2
  exit 1
fi

PKGS="redis-server redis-tools memcached sasl2-bin"
if ! have apt-get; then
  echo "error: redis-server and memcached are needed and this is not a Debian/Ubuntu system." >&2
  echo "Install them with your package manager (for example: dnf install redis memcached), or set" >&2
  echo "ELASTICACHE_LAB_REDIS_SERVER and ELASTICACHE_LAB_MEMCACHED to the binaries' paths." >&2
  exit 1
fi

if [ "$(id -u)" -eq 0 ]; then
  SUDO=""
elif have sudo && sudo -n true 2>/dev/null; then
  SUDO="sudo"
elif have sudo && [ -t 0 ]; then
  SUDO="sudo"
else
  echo "error: redis-server and memcached are not installed, and installing them needs root." >&2
  echo "Run this once, then run make again:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y $PKGS" >&2
  exit 1
fi

echo "Installing $PKGS with apt-get (the lab starts its own servers; the system services stay off)..."
# policy-rc.d tells the packages' install scripts not to start the system-wide services.
POLICY=/usr/sbin/policy-rc.d
ADDED_POLICY=""
if [ ! -e "$POLICY" ]; then
  printf '#!/bin/sh\nexit 101\n' | $SUDO tee "$POLICY" >/dev/null
  $SUDO chmod 755 "$POLICY"
  ADDED_POLICY=1
fi
cleanup() { if [ -n "$ADDED_POLICY" ]; then $SUDO rm -f "$POLICY"; fi; }
trap cleanup EXIT INT TERM
$SUDO env DEBIAN_FRONTEND=noninteractive apt-get update -q || true
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS; then
  echo "error: apt-get could not install the engines. Try by hand:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y $PKGS" >&2
  exit 1
fi
