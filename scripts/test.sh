#!/usr/bin/env bash
# Run the whole test suite. Integration tests start their own redis-server on a free
# loopback port, so Redis must be installed (done here if missing).
#   scripts/test.sh [extra cargo test args...]     e.g. scripts/test.sh --test redis_harness
#   RDBTOOL_CLOCK_OFFSET=5y scripts/test.sh        the suite with the wall clock of the tests,
#                                                  rdbtool and every redis-server moved ahead
#                                                  (Ny, Nd or seconds; scripts/clockshim.c)
# Tests that cannot run part of their work (no ../shared, no redis-check-rdb, ...) pass in
# cargo's count; they record why in a log, and the last lines here say how many and why.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/ensure_redis.sh

skip_log=$(mktemp)
trap 'rm -f "$skip_log"' EXIT
export RDBTOOL_SKIP_LOG="$skip_log"

if [ -n "${RDBTOOL_CLOCK_OFFSET:-}" ]; then
  case "$RDBTOOL_CLOCK_OFFSET" in
    *y) offset=$(( ${RDBTOOL_CLOCK_OFFSET%y} * 31557600 )) ;;
    *d) offset=$(( ${RDBTOOL_CLOCK_OFFSET%d} * 86400 )) ;;
    *) offset=$(( RDBTOOL_CLOCK_OFFSET )) ;;
  esac
  mkdir -p target
  cc -O2 -shared -fPIC -o target/clockshim.so scripts/clockshim.c
  # Build with the real clock; only the tests run with the moved one.
  cargo test --release --no-run "$@"
  export RDBTOOL_CLOCK_OFFSET_S=$offset
  export LD_PRELOAD="$PWD/target/clockshim.so${LD_PRELOAD:+:$LD_PRELOAD}"
  echo "== clock moved by $offset s: the tests, rdbtool and redis-server see $(date -u +%FT%TZ)"
fi

status=0
cargo test --release --no-fail-fast "$@" || status=$?
unset LD_PRELOAD

skips=$(sort -u "$skip_log" | wc -l)
echo "== skipped: $skips test(s) skipped part or all of their work"
sort -u "$skip_log" | sed 's/^/   /'
exit $status
