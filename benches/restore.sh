#!/usr/bin/env bash
# Restore benchmark: `rdbtool restore FILE --to redis://...` against the standard way,
# `rdbtool export --format resp --restore FILE | redis-cli --pipe`, each into its own fresh
# redis-server started here (127.0.0.1, a free port, a temp dir, no persistence), then
# `rdbtool restore` into a fresh local 3-master cluster (--into-db0 --on-conflict last).
#
#   benches/restore.sh [FILE]        (default /tmp/bench/big.rdb; generated with
#                                     ../shared/bench/gen.sh $SIZE_MB when missing)
#
# Env: SIZE_MB=1024, NO_CLUSTER=1 (skip the cluster run), RDBTOOL=path, CONNECTIONS="1 2 4"
# (also time `restore --connections N` for each N, each into its own fresh server).
# Prints wall time and max RSS of each run and the ratios. Servers are stopped by PID.
set -uo pipefail

ROOT=$(git -C "$(dirname "$0")" rev-parse --show-toplevel) || exit 1
FILE=${1:-/tmp/bench/big.rdb}
SIZE_MB=${SIZE_MB:-1024}
RDBTOOL=${RDBTOOL:-$ROOT/target/release/rdbtool}
GEN=$ROOT/../shared/bench/gen.sh
die() { echo "restore.sh: $*" >&2; exit 1; }
[ -x /usr/bin/time ] || die "/usr/bin/time (GNU time) is required"
command -v redis-server >/dev/null && command -v redis-cli >/dev/null || die "redis-server / redis-cli needed"
if [ ! -s "$FILE" ]; then
  [ -f "$GEN" ] || die "$FILE missing and $GEN not found"
  nice -n 10 bash "$GEN" "$SIZE_MB" "$FILE" || die "gen.sh failed"
fi
[ -x "$RDBTOOL" ] || (cd "$ROOT" && cargo build --release) || die "build failed"
cat "$FILE" >/dev/null

WORK=$(mktemp -d "${TMPDIR:-/tmp}/rdbtool-restore-bench.XXXXXX")
PIDS=()
cleanup() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  rm -rf "$WORK"
}
trap cleanup EXIT

free_port() { python3 -c 'import socket;s=socket.socket();s.bind(("127.0.0.1",0));print(s.getsockname()[1])'; }
# A port whose cluster bus port (+10000) is valid too.
cluster_port() {
  local p
  while p=$(free_port); [ "$p" -gt 55000 ]; do :; done
  echo "$p"
}

# start_server DIR PORT [args...]: starts redis-server, waits for PING.
start_server() {
  local dir=$1 port=$2; shift 2
  mkdir -p "$dir"
  redis-server --port "$port" --bind 127.0.0.1 --dir "$dir" --save '' --appendonly no \
    --daemonize no --logfile "$dir/log" "$@" &
  PIDS+=($!)
  for _ in $(seq 1 200); do redis-cli -p "$port" ping >/dev/null 2>&1 && return 0; sleep 0.05; done
  die "redis-server on $port did not start"
}

stop_all() {
  for p in "${PIDS[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
  PIDS=()
}

# timed NAME CMD...: runs CMD under /usr/bin/time, prints and records "seconds max_rss_kb".
timed() {
  local name=$1; shift
  /usr/bin/time -f '%e %M' -o "$WORK/$name.time" "$@" >"$WORK/$name.out" 2>"$WORK/$name.err"
  local rc=$?
  read -r secs rss <"$WORK/$name.time" || true
  printf '%-28s %8s s  max RSS %6d MiB  exit %d\n' "$name" "$secs" "$((rss / 1024))" "$rc"
  eval "T_$name=$secs"
}

echo "== file: $FILE ($(stat -c %s "$FILE") bytes)"
P=$(free_port)
start_server "$WORK/a" "$P"
timed restore "$RDBTOOL" restore "$FILE" --to "redis://127.0.0.1:$P" --no-functions
tail -n 4 "$WORK/restore.out"
KEYS_A=$(redis-cli -p "$P" info keyspace | grep -c '^db')
stop_all

for N in ${CONNECTIONS:-}; do
  P=$(free_port)
  start_server "$WORK/n$N" "$P"
  timed "restore_c$N" "$RDBTOOL" restore "$FILE" --to "redis://127.0.0.1:$P" --no-functions --connections "$N"
  stop_all
done

P=$(free_port)
start_server "$WORK/b" "$P"
timed export_pipe bash -c "'$RDBTOOL' export --format resp --restore --no-functions '$FILE' | redis-cli -p $P --pipe"
tail -n 1 "$WORK/export_pipe.out"
stop_all

python3 -c "print(f'restore / (export | redis-cli --pipe) = {$T_restore / $T_export_pipe:.3f}')"
for N in ${CONNECTIONS:-}; do
  eval "t=\$T_restore_c$N"
  python3 -c "print(f'restore --connections $N / (export | redis-cli --pipe) = {$t / $T_export_pipe:.3f}')"
done

if [ "${NO_CLUSTER:-0}" != 1 ]; then
  ADDRS=()
  for i in 1 2 3; do
    P=$(cluster_port)
    start_server "$WORK/c$i" "$P" --cluster-enabled yes --cluster-config-file nodes.conf
    ADDRS+=("127.0.0.1:$P")
  done
  redis-cli --cluster create "${ADDRS[@]}" --cluster-replicas 0 --cluster-yes >"$WORK/create.log" 2>&1 ||
    die "cluster create failed"
  for _ in $(seq 1 100); do
    redis-cli -p "${ADDRS[0]#*:}" cluster info | grep -q cluster_state:ok && break
    sleep 0.1
  done
  sleep 1
  timed cluster "$RDBTOOL" restore "$FILE" --to "redis://${ADDRS[0]}" --no-functions --into-db0 --on-conflict last
  tail -n 7 "$WORK/cluster.out"
  stop_all
  python3 -c "print(f'cluster restore / standalone restore = {$T_cluster / $T_restore:.3f}; cluster / (export | redis-cli --pipe) = {$T_cluster / $T_export_pipe:.3f}')"
fi
: "$KEYS_A"
