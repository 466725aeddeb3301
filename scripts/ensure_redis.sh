#!/usr/bin/env bash
# Make sure redis-server and redis-cli (plus redis-check-rdb / redis-check-aof, from the same
# Debian packages) are on PATH; install Debian's redis-server with apt-get when they are not.
# Non-interactive; uses sudo only when not root. RUNLEVEL=1 keeps the package's init script from
# starting a system redis on port 6379: the tests start their own servers.
set -euo pipefail

if command -v redis-server >/dev/null 2>&1 && command -v redis-cli >/dev/null 2>&1; then
  exit 0
fi
if ! command -v apt-get >/dev/null 2>&1; then
  echo "ensure_redis: redis-server is missing and apt-get is not available; install Redis yourself" >&2
  exit 1
fi

as_root=()
[ "$(id -u)" -eq 0 ] || as_root=(sudo -n)
apt_install() {
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive RUNLEVEL=1 \
    apt-get install -y -q --no-install-recommends "$@" </dev/null
}

echo "ensure_redis: installing redis-server with apt-get" >&2
if ! apt_install redis-server redis-tools; then
  "${as_root[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q </dev/null
  apt_install redis-server redis-tools
fi
command -v redis-server >/dev/null && command -v redis-cli >/dev/null
