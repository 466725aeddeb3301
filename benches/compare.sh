#!/usr/bin/env bash
# The issue-15 table in one run: every rdbtool job against its anchor, measured in the same run
# (only ratios from one run count on a shared machine), with peak RSS.
#
#   benches/compare.sh [BIG_RDB]        (default /tmp/bench/big.rdb, made by ../shared/bench/gen.sh 1024)
#
# Env knobs:
#   RUNS=3             timed runs per job (the median is reported; RSS is the max over the runs)
#   WORK=/tmp/rdbtool-compare   scratch dir: outputs, the peers, the extra bench files
#   SIZES="256 4096"   extra file sizes (MiB) for "verify RSS flat with file size"; made once
#                      with gen.sh under $WORK (4 GiB needs ~9 GB of RAM for redis-server and
#                      ~10 min); SIZES="" skips them
#   SMALL=$WORK/f256.rdb   the file diff is measured on (made with the first of SIZES)
#   NO_BUILD=1         do not run cargo build --release
#   NO_PEERS=1         do not install missing peers (rdb-rs)
#
# Peers: redis-check-rdb (from the redis-server package), rdb-rs (`cargo install rdb --version
# 0.4.0 --root $WORK/rdb-rs`, installed here when missing), cp. CI does not run this script.
set -uo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 1
BIG=${1:-/tmp/bench/big.rdb}
RUNS=${RUNS:-3}
WORK=${WORK:-/tmp/rdbtool-compare}
SIZES=${SIZES-256 4096}
GEN=$ROOT/../shared/bench/gen.sh
RDBTOOL=${RDBTOOL:-$ROOT/target/release/rdbtool}
mkdir -p "$WORK"

die() { echo "compare.sh: $*" >&2; exit 2; }
have() { command -v "$1" >/dev/null 2>&1; }
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required for peak RSS"
have python3 || die "python3 is required"
[ -s "$BIG" ] || die "$BIG missing: make it with $GEN 1024 $BIG"

if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release"
  (cd "$ROOT" && cargo build --release) >"$WORK/build.log" 2>&1 || die "build failed: $WORK/build.log"
fi

# ---- peers ----------------------------------------------------------------
RDBRS=$WORK/rdb-rs/bin/rdb
if [ ! -x "$RDBRS" ] && [ "${NO_PEERS:-0}" != 1 ]; then
  echo "== installing rdb-rs 0.4.0 into $WORK/rdb-rs"
  cargo install rdb --version 0.4.0 --root "$WORK/rdb-rs" >"$WORK/rdb-rs.log" 2>&1 ||
    echo "!! cargo install rdb failed (see $WORK/rdb-rs.log): export is reported without its anchor"
fi

# ---- extra sizes ----------------------------------------------------------
port=16580
for s in $SIZES; do
  f=$WORK/f$s.rdb
  if [ ! -s "$f" ]; then
    echo "== generating $f ($s MiB) with gen.sh"
    nice -n 10 bash "$GEN" "$s" "$f" "$port" >"$WORK/gen$s.log" 2>&1 || echo "!! gen.sh $s failed: $WORK/gen$s.log"
  fi
  port=$((port + 1))
done
FIRST_SIZE=${SIZES%% *}
SMALL=${SMALL:-$WORK/f$FIRST_SIZE.rdb}

# ---- measuring ------------------------------------------------------------
# run LABEL CMD...: RUNS timed runs (wall from GNU time, peak RSS in KiB), into $WORK/t/LABEL.
mkdir -p "$WORK/t" "$WORK/out"
rm -f "$WORK"/t/*
cat "$BIG" >/dev/null
[ -s "$SMALL" ] && cat "$SMALL" >/dev/null
run() {
  local label=$1; shift
  rm -rf "$WORK/out"/*
  for ((r = 1; r <= RUNS; r++)); do
    rm -rf "$WORK/out"/*
    /usr/bin/time -f '%e %M %x' -a -o "$WORK/t/$label" "$@" >/dev/null 2>>"$WORK/t/$label.err"
  done
  printf -- '-- %-28s %s\n' "$label" "$(awk '{printf "%ss/%sKB ", $1, $2}' "$WORK/t/$label")"
}
# Interleaved: each job right after its anchor, so load drifts hit both alike.
echo "== loadavg $(cut -d' ' -f1-3 /proc/loadavg), nproc $(nproc), $RUNS runs each"
run check-rdb redis-check-rdb "$BIG"
run verify "$RDBTOOL" verify "$BIG"
RAYON_NUM_THREADS=1 run verify-1thread "$RDBTOOL" verify "$BIG"
RAYON_NUM_THREADS=2 run verify-2threads "$RDBTOOL" verify "$BIG"
run info "$RDBTOOL" info "$BIG"
[ -x "$RDBRS" ] && run rdb-rs-json "$RDBRS" --format json "$BIG"
run export-jsonl "$RDBTOOL" export --format jsonl "$BIG"
run cp cp "$BIG" "$WORK/out/copy.rdb"
run merge "$RDBTOOL" merge --into-db0 --on-conflict rename -o "$WORK/out/m.rdb" "$BIG"
run split "$RDBTOOL" split --shards 3 --into-db0 --on-conflict rename -o "$WORK/out/s" "$BIG"
if [ -s "$SMALL" ]; then
  run verify-small "$RDBTOOL" verify "$SMALL"
  run diff-small "$RDBTOOL" diff "$SMALL" "$SMALL"
fi
for s in $SIZES; do
  [ -s "$WORK/f$s.rdb" ] && cat "$WORK/f$s.rdb" >/dev/null 2>&1 && RUNS=1 run "verify-rss-$s" "$RDBTOOL" verify "$WORK/f$s.rdb"
done

python3 - "$WORK/t" "$BIG" "$SMALL" <<'PY'
import os, statistics, sys
t, big, small = sys.argv[1:]
def get(label):
    p = os.path.join(t, label)
    if not os.path.exists(p):
        return None
    rows = [l.split() for l in open(p) if len(l.split()) == 3 and l.split()[1].isdigit()]
    bad = sum(1 for r in rows if r[2] != "0") + sum(1 for l in open(p) if "status" in l or "signal" in l)
    if not rows:
        return None
    return {"s": statistics.median(float(r[0]) for r in rows), "rss": max(int(r[1]) for r in rows) / 1024, "bad": bad}
def fmt(m):
    return "-" if m is None else f"{m['s']:.2f} s, {m['rss']:.0f} MiB" + (" (FAILED runs)" if m["bad"] else "")
def ratio(a, b, inv=False):
    if a is None or b is None or a["s"] == 0 or b["s"] == 0:
        return "-"
    return f"{(b['s'] / a['s']) if not inv else (a['s'] / b['s']):.2f}x"
M = {k: get(k) for k in os.listdir(t) if not k.endswith(".err")}
g = M.get
rows = [
    ("verify", "redis-check-rdb", g("verify"), g("check-rdb"), ratio(g("verify"), g("check-rdb")) + " faster", ">= 12x faster, <= 100 MiB"),
    ("verify 1 vs 2 threads", "RAYON_NUM_THREADS=1", g("verify-2threads"), g("verify-1thread"), ratio(g("verify-2threads"), g("verify-1thread")), ">= 1.8x"),
    ("info", "redis-check-rdb", g("info"), g("check-rdb"), ratio(g("info"), g("check-rdb")) + " faster", ">= 20x, <= 100 MiB"),
    ("export jsonl", "rdb-rs --format json", g("export-jsonl"), g("rdb-rs-json"), ratio(g("export-jsonl"), g("rdb-rs-json")) + " faster", ">= 8x"),
    ("merge --into-db0 --on-conflict rename", "cp", g("merge"), g("cp"), ratio(g("merge"), g("cp"), True) + " cp", "<= 1.5x cp, <= 100 MiB"),
    ("split --shards 3 --into-db0 (rename)", "cp", g("split"), g("cp"), ratio(g("split"), g("cp"), True) + " cp", "<= 1.5x cp, <= 100 MiB"),
    ("diff file vs file (small)", "verify of it", g("diff-small"), g("verify-small"), ratio(g("diff-small"), g("verify-small"), True) + " verify", "<= 2x verify, <= 100 MiB"),
]
print(f"\nfile {big} ({os.path.getsize(big)/2**20:.0f} MiB); small file {small}")
w = [30, 22, 24, 24, 16, 26]
hdr = ("job", "anchor", "rdbtool", "anchor (same run)", "ratio", "target")
print("| " + " | ".join(h.ljust(x) for h, x in zip(hdr, w)) + " |")
print("|" + "|".join("-" * (x + 2) for x in w) + "|")
for job, anchor, a, b, r, target in rows:
    print("| " + " | ".join(str(v).ljust(x) for v, x in zip((job, anchor, fmt(a), fmt(b), r, target), w)) + " |")
print("\nverify peak RSS by file size:")
sizes = [(int(k.rsplit("-", 1)[1]), M[k]) for k in M if k.startswith("verify-rss-")]
if g("verify"):
    sizes.append((round(os.path.getsize(big) / 2**20), g("verify")))
for size, m in sorted(sizes, key=lambda x: x[0]):
    print(f"  {size:>5} MiB file: {fmt(m)}")
PY
