#!/usr/bin/env bash
# Run the whole test suite. Integration tests start their own redis-server on a free
# loopback port, so Redis must be installed (done here if missing).
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh --test redis_harness
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_redis.sh
exec cargo test --release --no-fail-fast "$@"
