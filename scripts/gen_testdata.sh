#!/usr/bin/env bash
# Regenerate testdata/ with the local redis-server (Debian's 7.0.15). See testdata/README.md.
#   scripts/gen_testdata.sh [--out DIR] [--seed N] [--redis-server PATH]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
for tool in redis-server redis-check-rdb redis-check-aof python3; do
  command -v "$tool" >/dev/null || { echo "gen_testdata: $tool not found (apt-get install redis-server python3)" >&2; exit 1; }
done
exec python3 "$here/gen_testdata.py" "$@"
