#!/usr/bin/env bash
# Report benchmark: `rdbtool report FILE` (summary) against its anchor `rdbtool info FILE`, run
# alternately in one loop (info, report, report --depth 0, then again), so both see the same
# load. Each run is timed by the loop itself: wall to the microsecond, user + system CPU and max
# RSS from the child's rusage (GNU time's 10 ms steps are 6% of info's wall). Prints the medians,
# the report / info ratios of the medians (wall and CPU = user + sys) and every run.
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
if [ ! -s "$FILE" ]; then
  [ -f "$GEN" ] || die "$FILE missing and $GEN not found"
  nice -n 10 bash "$GEN" "$SIZE_MB" "$FILE" || die "gen.sh failed"
fi
[ -x "$RDBTOOL" ] || (cd "$ROOT" && cargo build --release) || die "build failed"
cat "$FILE" >/dev/null

echo "$(date -u +%FT%TZ) $(git -C "$ROOT" rev-parse --short HEAD) load: $(cut -d' ' -f1-3 /proc/loadavg)"
# One untimed warm-up of each.
"$RDBTOOL" info "$FILE" >/dev/null && "$RDBTOOL" report "$FILE" >/dev/null || die "warm-up failed"
python3 - "$RDBTOOL" "$FILE" "$RUNS" <<'EOF' || exit 1
import os, statistics, subprocess, sys, time
tool, file, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
cmds = {"info": ["info"], "report": ["report"], "report-depth0": ["report", "--depth", "0"]}
runs = {name: [] for name in cmds}
for _ in range(n):
    for name, args in cmds.items():
        t0 = time.perf_counter()
        p = subprocess.Popen([tool, *args, file], stdout=subprocess.DEVNULL)
        _, status, ru = os.wait4(p.pid, 0)
        wall = time.perf_counter() - t0
        if status != 0:
            sys.exit(f"report.sh: {name} failed")
        runs[name].append((wall, ru.ru_utime + ru.ru_stime, ru.ru_maxrss / 1024))
med = {n: (statistics.median(w for w, _, _ in r), statistics.median(c for _, c, _ in r), max(m for _, _, m in r))
       for n, r in runs.items()}
print(f"{'command':<14} {'median wall':>11} {'median CPU':>10} {'max RSS':>8} {'wall/info':>9} {'CPU/info':>8}  runs (wall s / CPU s)")
for n, r in runs.items():
    w, c, m = med[n]
    each = " ".join(f"{a:.3f}/{b:.3f}" for a, b, _ in r)
    print(f"{n:<14} {w:>10.3f}s {c:>9.3f}s {m:>5.0f}MiB {w / med['info'][0]:>9.3f} {c / med['info'][1]:>8.3f}  {each}")
EOF
echo "$(date -u +%FT%TZ) load: $(cut -d' ' -f1-3 /proc/loadavg)"
