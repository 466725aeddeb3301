#!/usr/bin/env bash
# Report benchmark: `rdbtool report FILE` (summary) against its anchor `rdbtool info FILE`, run
# alternately in one loop (info, report, report --depth 0, then again), so both see the same
# load. Each run is wrapped in GNU time: wall, user and system seconds, max RSS. Prints every run
# and the medians, with report / info ratios of the medians (wall and CPU = user + sys).
#
#   benches/report.sh [FILE]        (default /tmp/bench/big.rdb; generated with
#                                    ../shared/bench/gen.sh $SIZE_MB when missing)
#
# Env: RUNS=5, SIZE_MB=1024, RDBTOOL=path (default target/release/rdbtool).
set -uo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 1
FILE=${1:-/tmp/bench/big.rdb}
RUNS=${RUNS:-5}
SIZE_MB=${SIZE_MB:-1024}
RDBTOOL=${RDBTOOL:-$ROOT/target/release/rdbtool}
GEN=$ROOT/../shared/bench/gen.sh
die() { echo "report.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required"
if [ ! -s "$FILE" ]; then
  [ -f "$GEN" ] || die "$FILE missing and $GEN not found"
  nice -n 10 bash "$GEN" "$SIZE_MB" "$FILE" || die "gen.sh failed"
fi
[ -x "$RDBTOOL" ] || (cd "$ROOT" && cargo build --release) || die "build failed"
cat "$FILE" >/dev/null

LOG=$(mktemp "${TMPDIR:-/tmp}/rdbtool-report-bench.XXXXXX")
trap 'rm -f "$LOG"' EXIT
echo "$(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
run() { # name, args...
  local name=$1
  shift
  /usr/bin/time -f "$name %e %U %S %M" -a -o "$LOG" "$RDBTOOL" "$@" "$FILE" >/dev/null || die "$name failed"
}
# One untimed warm-up of each.
"$RDBTOOL" info "$FILE" >/dev/null && "$RDBTOOL" report "$FILE" >/dev/null || die "warm-up failed"
for _ in $(seq "$RUNS"); do
  run info info
  run report report
  run report-depth0 report --depth 0
done
echo "$(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
python3 - "$LOG" <<'EOF'
import statistics, sys
runs = {}
for line in open(sys.argv[1]):
    name, wall, user, sys_, rss = line.split()
    runs.setdefault(name, []).append((float(wall), float(user) + float(sys_), int(rss) / 1024))
med = {n: (statistics.median(w for w, _, _ in r), statistics.median(c for _, c, _ in r), max(m for _, _, m in r))
       for n, r in runs.items()}
print(f"{'command':<16} {'runs (wall s / CPU s)':<60} {'median wall':>11} {'median CPU':>10} {'max RSS':>9} {'wall/info':>9} {'CPU/info':>8}")
for n, r in runs.items():
    w, c, m = med[n]
    each = " ".join(f"{a:.2f}/{b:.2f}" for a, b, _ in r)
    print(f"{n:<16} {each:<60} {w:>10.2f}s {c:>9.2f}s {m:>6.0f}MiB {w / med['info'][0]:>9.2f} {c / med['info'][1]:>8.2f}")
EOF
