#!/usr/bin/env bash
# Whole-process benchmark: rdbtool vs redis-check-rdb on one big RDB, same run.
#
#   benches/run.sh [BIG_RDB]          (default /tmp/bench/big.rdb)
#
# Env knobs:
#   RUNS=3            timed runs per command (median is reported)
#   SIZE_MB=1024      size passed to gen.sh when BIG_RDB is missing
#   RESULTS=/tmp/bench/results.json
#   BENCH_TOOL=auto   auto | hyperfine | loop   (auto: hyperfine if installed)
#   CMD_TIMEOUT=900   seconds per single run before it is killed
#   NO_BUILD=1        skip `cargo build --release`
#   RDBTOOL=path      benchmark this binary instead of target/release/rdbtool
#
# Every command's stdout goes to /dev/null. A failing or missing command is
# reported in the table and the JSON, never fatal. See benches/README.md.
set -uo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 1
BIG=${1:-/tmp/bench/big.rdb}
RUNS=${RUNS:-3}
SIZE_MB=${SIZE_MB:-1024}
RESULTS=${RESULTS:-/tmp/bench/results.json}
BENCH_TOOL=${BENCH_TOOL:-auto}
CMD_TIMEOUT=${CMD_TIMEOUT:-900}
RDBTOOL=${RDBTOOL:-$ROOT/target/release/rdbtool}
GEN=$ROOT/../shared/bench/gen.sh

die() { echo "run.sh: $*" >&2; exit 1; }
have() { command -v "$1" >/dev/null 2>&1; }
have python3 || die "python3 is required (table/JSON)"
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time, package 'time') is required for max RSS"
have timeout || die "timeout (coreutils) is required"

# ---- dataset --------------------------------------------------------------
if [ ! -s "$BIG" ]; then
  [ -f "$GEN" ] || die "$BIG missing and generator $GEN not found"
  echo "== generating $BIG (${SIZE_MB} MB) with $GEN"
  t0=$EPOCHREALTIME
  nice -n 10 bash "$GEN" "$SIZE_MB" "$BIG" || die "gen.sh failed"
  echo "== generated in $(python3 -c "print(f'{$EPOCHREALTIME-$t0:.1f}')") s"
fi
BIG=$(readlink -f "$BIG")
SIZE=$(stat -c %s "$BIG")
HEADER=$(head -c 9 "$BIG" | tr -c '[:print:]' '?')

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdbtool-bench.XXXXXX")
echo "== work dir $WORK (logs)"

# ---- build ----------------------------------------------------------------
BUILD_STATUS=skipped
if [ "${NO_BUILD:-0}" != 1 ]; then
  echo "== cargo build --release"
  if (cd "$ROOT" && cargo build --release) >"$WORK/build.log" 2>&1; then
    BUILD_STATUS=ok
  else
    BUILD_STATUS=failed
    echo "!! cargo build --release failed (rdbtool commands will be reported missing):"
    tail -n 15 "$WORK/build.log" | sed 's/^/   /'
  fi
fi

# ---- commands -------------------------------------------------------------
# label US status-if-unavailable (empty = available) US command (shell-quoted); US = \x1f
q() { printf '%q ' "$@"; }
CMDS=()
add() { CMDS+=("$1"$'\x1f'"$2"$'\x1f'"$3"); }

if have redis-check-rdb; then
  add "redis-check-rdb" "" "$(q redis-check-rdb "$BIG")"
else
  add "redis-check-rdb" "missing (redis-check-rdb not installed)" ""
fi

HELP=""
if [ -x "$RDBTOOL" ]; then
  HELP=$("$RDBTOOL" --help 2>&1) || true
fi
# a subcommand exists if clap's help lists it as "  NAME  description"
has_sub() { grep -Eq "^[[:space:]]+$1([[:space:]]|\$)" <<<"$HELP"; }
rdb_cmd() { # label subcommand args...
  local label=$1 sub=$2; shift 2
  if [ ! -x "$RDBTOOL" ]; then
    add "$label" "missing (no binary; build $BUILD_STATUS)" ""
  elif ! has_sub "$sub"; then
    add "$label" "missing (no '$sub' subcommand)" ""
  else
    add "$label" "" "$(q "$RDBTOOL" "$sub" "$@" "$BIG")"
  fi
}
rdb_cmd "rdbtool verify"               verify
rdb_cmd "rdbtool verify --json"        verify --json
rdb_cmd "rdbtool info"                 info
rdb_cmd "rdbtool export --format jsonl" export --format jsonl

# ---- timing tool ----------------------------------------------------------
case $BENCH_TOOL in
  auto) if have hyperfine; then TOOL=hyperfine; else TOOL=loop; fi ;;
  hyperfine) have hyperfine || die "BENCH_TOOL=hyperfine but hyperfine is not installed"; TOOL=hyperfine ;;
  loop) TOOL=loop ;;
  *) die "BENCH_TOOL must be auto, hyperfine or loop" ;;
esac

echo "== file $BIG: $SIZE bytes, header $HEADER"
echo "== warming page cache"
cat "$BIG" >/dev/null
LOAD0=$(cut -d' ' -f1-3 /proc/loadavg)
echo "== loadavg before timing: $LOAD0 (nproc $(nproc)); method $TOOL, $RUNS runs"

# One untimed probe run per available command: checks the exit status (a
# failing command is reported, not timed) and doubles as a warm-up.
# Output: $WORK/<i>.status = ok | failed (...) | missing (...)
i=0
for c in "${CMDS[@]}"; do
  IFS=$'\x1f' read -r label unavail cmd <<<"$c"
  if [ -n "$unavail" ]; then
    echo "$unavail" >"$WORK/$i.status"
  else
    echo "-- probe: $label"
    eval "timeout $CMD_TIMEOUT $cmd" >/dev/null 2>"$WORK/$i.probe.err"
    rc=$?
    if [ $rc -eq 0 ]; then
      echo ok >"$WORK/$i.status"
    else
      why="failed (exit $rc)"
      [ $rc -eq 124 ] && why="failed (timeout ${CMD_TIMEOUT}s)"
      grep -Eqi "unexpected argument|unrecognized|invalid value|unknown" "$WORK/$i.probe.err" &&
        why="failed (exit $rc, option not supported?)"
      echo "$why" >"$WORK/$i.status"
      echo "   $why: $(head -c 300 "$WORK/$i.probe.err" | head -n 3 | tr '\n' ' ')"
    fi
  fi
  i=$((i + 1))
done

# Timed runs. Each run is `timeout T /usr/bin/time -f '%e %M %x' -a -o FILE CMD`
# so max RSS is captured in the very runs that are timed.
#  hyperfine: wall time from hyperfine (shell spawn time subtracted), per command.
#  loop:      wall time from $EPOCHREALTIME, runs interleaved round-robin across
#             commands so background load drifts hit all commands alike.
wrap() { echo "timeout $CMD_TIMEOUT /usr/bin/time -f '%e %M %x' -a -o $(q "$WORK/$1.time") $2"; }
n=${#CMDS[@]}
if [ "$TOOL" = hyperfine ]; then
  for ((i = 0; i < n; i++)); do
    [ "$(cat "$WORK/$i.status")" = ok ] || continue
    IFS=$'\x1f' read -r label unavail cmd <<<"${CMDS[$i]}"
    echo "-- hyperfine: $label"
    hyperfine --runs "$RUNS" --warmup 0 --ignore-failure --shell bash --style basic \
      --command-name "$label" --export-json "$WORK/$i.hf.json" \
      "$(wrap "$i" "$cmd") >/dev/null 2>>$(q "$WORK/$i.err")" ||
      echo "!! hyperfine failed for $label"
  done
else
  for ((r = 1; r <= RUNS; r++)); do
    for ((i = 0; i < n; i++)); do
      [ "$(cat "$WORK/$i.status")" = ok ] || continue
      IFS=$'\x1f' read -r label unavail cmd <<<"${CMDS[$i]}"
      t0=$EPOCHREALTIME
      eval "$(wrap "$i" "$cmd")" >/dev/null 2>>"$WORK/$i.err"
      t1=$EPOCHREALTIME
      python3 -c "print(f'{$t1-$t0:.6f}')" >>"$WORK/$i.wall"
      printf -- '-- run %d/%d %-32s %s s\n' "$r" "$RUNS" "$label" "$(tail -n1 "$WORK/$i.wall")"
    done
  done
fi

# ---- report ---------------------------------------------------------------
for ((i = 0; i < n; i++)); do
  IFS=$'\x1f' read -r label unavail cmd <<<"${CMDS[$i]}"
  printf '%s\t%s\t%s\n' "$label" "$(cat "$WORK/$i.status")" "$cmd"
done >"$WORK/commands.tsv"

mkdir -p "$(dirname "$RESULTS")"
python3 - "$WORK" "$RESULTS" "$BIG" "$SIZE" "$HEADER" "$TOOL" "$RUNS" "$LOAD0" \
  "$BUILD_STATUS" "$ROOT" "$RDBTOOL" <<'PY'
import json, os, statistics, subprocess, sys, time
work, results, big, size, header, tool, runs, load0, build, root, rdbtool = sys.argv[1:]
size = int(size)

def sh(*a):
    try:
        return subprocess.run(a, capture_output=True, text=True, timeout=10).stdout.strip()
    except Exception:
        return ""

rows = []
for i, line in enumerate(open(os.path.join(work, "commands.tsv"))):
    label, status, cmd = line.rstrip("\n").split("\t")
    row = {"command": label, "argv": cmd.strip(), "status": status,
           "runs": [], "median_s": None, "mb_per_s": None, "max_rss_mb": None,
           "ratio_vs_redis_check_rdb": None}
    tfile = os.path.join(work, f"{i}.time")
    rss, bad = [], 0
    if os.path.exists(tfile):
        for l in open(tfile):
            p = l.split()
            if "non-zero status" in l or "terminated by signal" in l:
                bad += 1  # GNU time writes one such line per failing run
            elif len(p) == 3 and p[1].isdigit():
                rss.append(int(p[1]))
    walls = []
    hf = os.path.join(work, f"{i}.hf.json")
    if os.path.exists(hf):
        r = json.load(open(hf))["results"][0]
        walls = r["times"]
        bad = max(bad, sum(1 for c in r.get("exit_codes", []) if c != 0))
    wf = os.path.join(work, f"{i}.wall")
    if os.path.exists(wf):
        walls = [float(x) for x in open(wf) if x.strip()]
    perr = os.path.join(work, f"{i}.probe.err")
    if status.startswith("failed") and os.path.exists(perr):
        row["stderr"] = open(perr, errors="replace").read(400)
    if status == "ok":
        if bad:
            row["status"] = f"failed ({bad} of {len(walls)} timed runs exited non-zero)"
        elif not walls:
            row["status"] = "failed (no timing data)"
        else:
            med = statistics.median(walls)
            row.update(runs=walls, median_s=med, mb_per_s=size / 1e6 / med,
                       max_rss_mb=(max(rss) * 1024 / 1e6) if rss else None)
    rows.append(row)

base = next((r for r in rows if r["command"] == "redis-check-rdb" and r["median_s"]), None)
for r in rows:
    if base and r["median_s"]:
        r["ratio_vs_redis_check_rdb"] = r["median_s"] / base["median_s"]
        if r["max_rss_mb"] and base["max_rss_mb"]:
            r["rss_ratio_vs_redis_check_rdb"] = r["max_rss_mb"] / base["max_rss_mb"]

meta = {
    "date_utc": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    "file": big, "size_bytes": size, "header": header,
    "method": tool, "runs_per_command": int(runs),
    "loadavg_before": load0, "nproc": os.cpu_count(),
    "build": build,
    "git_commit": sh("git", "-C", root, "rev-parse", "--short", "HEAD"),
    "git_dirty": bool(sh("git", "-C", root, "status", "--porcelain", "--", "src", "Cargo.toml")),
    "rdbtool": rdbtool,
    "redis_check_rdb_version": sh("redis-server", "--version"),
    "units": {"median_s": "wall seconds, median of runs",
              "mb_per_s": "input bytes / 1e6 / median_s",
              "max_rss_mb": "max over timed runs of GNU time %M (KiB) * 1024 / 1e6",
              "ratio_vs_redis_check_rdb": "median_s / redis-check-rdb median_s (lower is faster)"},
}
json.dump({"meta": meta, "results": rows}, open(results, "w"), indent=2)

def f(v, fmt):
    return fmt.format(v) if v is not None else "-"
w = max(len(r["command"]) for r in rows)
print()
print(f"{size} bytes ({size/2**30:.2f} GiB), header {header}; {tool}, {runs} runs; "
      f"loadavg before {load0}")
print(f"{'command':<{w}}  {'median s':>9}  {'MB/s':>8}  {'max RSS MB':>10}  {'ratio':>6}  status")
for r in rows:
    print(f"{r['command']:<{w}}  {f(r['median_s'], '{:9.3f}'):>9}  {f(r['mb_per_s'], '{:8.1f}'):>8}  "
          f"{f(r['max_rss_mb'], '{:10.1f}'):>10}  {f(r['ratio_vs_redis_check_rdb'], '{:6.3f}'):>6}  "
          f"{r['status']}")
print(f"\nratio = median time / redis-check-rdb median time (lower is faster). JSON: {results}")
PY
