#!/usr/bin/env python3
"""Generate testdata/aof/: AOF directories written by a real redis-server (Debian's 7.0.15).

    scripts/gen_aof_testdata.py [--out testdata/aof] [--seed 7] [--redis-server redis-server]

Two runs, `preamble` (aof-use-rdb-preamble yes: the base is an RDB) and `plain` (no: the base
is RESP commands), each on a private server (loopback, a port the OS picked, a temp dir; the
helpers of gen_testdata.py) started with

    --appendonly yes --aof-timestamp-enabled yes --aof-disable-auto-gc yes

(the last one keeps HISTORY files, so the manifest has history) and `DEBUG SET-ACTIVE-EXPIRE 0`.
Writes come in batches, each in a new wall-clock second (`#TS:` has 1-second resolution): after
every batch the server's own view of the dataset is recorded in expected/batch-N.json (the
layout of testdata/expected/*.json) with the batch's boundary time, the server's TIME in whole
seconds after its last write. Between batches 2 and 3 a BGREWRITEAOF (after a pause, so the base
is strictly later than batches 1-2, which become unreachable for a point-in-time restore); between
batches 3 and 4 a BGREWRITEAOF whose child is killed (SIGKILL, by its PID, found as the child of
our server in /proc): a failed rewrite leaves a second INCR file. batches.json lists the
boundaries (plus `rewrite`: a time just after the rewrite, whose dataset is batch 2's) and whether
each is at or after the base's time.

Then every set is checked with redis-check-aof, and loaded into a fresh server whose dataset must
equal the last batch. Python 3.11 standard library only.
"""

import argparse
import json
import os
import random
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import gen_testdata as g  # noqa: E402  (the server, client and canonical dump helpers)


def utc(t):
    return datetime.fromtimestamp(t, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


def next_second(after):
    """Sleeps at least 1.1 s, and until the clock is past the second `after`."""
    time.sleep(1.1)
    while time.time() < after + 1.05:
        time.sleep(0.05)


def server_second(c):
    return int(c("TIME")[0])


def children_of(pid):
    kids = []
    for p in os.listdir("/proc"):
        if not p.isdigit():
            continue
        try:
            stat = Path(f"/proc/{p}/stat").read_text()
        except OSError:
            continue
        # "pid (comm) state ppid ...": comm may hold spaces, so split after the last ')'.
        if stat.rsplit(")", 1)[1].split()[1] == str(pid):
            kids.append(int(p))
    return kids


def wait_no_rewrite(c, deadline_s=30):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        if (g.info_field(c, "persistence", "aof_rewrite_in_progress") == "0"
                and g.info_field(c, "persistence", "aof_rewrite_scheduled") == "0"):
            return g.info_field(c, "persistence", "aof_last_bgrewrite_status")
        time.sleep(0.05)
    raise RuntimeError("BGREWRITEAOF did not finish")


# --------------------------------------------------------------------------- batches


def batch1(c, rng):
    c("SET", "str:a", "alpha")
    c("SET", "str:n", 10)
    c("RPUSH", "list", *[g.alnum(rng, 5) for _ in range(6)])
    c("HSET", "hash", "f1", "v1", "f2", 2, "f3", g.alnum(rng, 20))
    c("SADD", "set", *rng.sample(range(1000), 8))
    c("ZADD", "zset", 1.5, "a", 2, "b", -3.25, "c")
    c("SET", b"bin:\xff\x00", g.binary(rng, 12))
    c("PEXPIREAT", "str:a", g.Y2100_MS + 1234)
    c("EXPIRE", "list", 30 * 24 * 3600)  # logged as PEXPIREAT
    c("SELECT", 1)
    for i in range(5):
        c("SET", f"db1:{i}", g.alnum(rng, 8))
    c("SELECT", 0)


def batch2(c, rng):
    c("MULTI")
    c("INCRBY", "str:n", 5)
    c("LPUSH", "list", "head")
    c("HDEL", "hash", "f2")
    c("EXEC")
    # A script with two writes: Redis 7.0 logs its effects wrapped in MULTI/EXEC.
    c("EVAL", "redis.call('SET', KEYS[1], ARGV[1]); redis.call('SADD', KEYS[2], ARGV[1]); return 1",
      2, "str:script", "set", "from-lua")
    c("SELECT", 2)
    c("HSET", "db2:hash", *[x for i in range(10) for x in (f"k{i}", g.alnum(rng, 6))])
    c("SET", "db2:ttl", "soon-ish", "PX", 7 * 24 * 3600 * 1000)  # logged as PXAT
    c("SELECT", 0)
    c("DEL", "str:a")
    c("FUNCTION", "LOAD", g.LIB_MATH)
    c("XADD", "stream", "1-1", "f", "v")


def batch3(c, rng):
    c("FCALL", "bump", 1, "fn:counter", 7)  # logged as the INCRBY it ran
    c("ZINCRBY", "zset", 10, "a")
    c("SREM", "set", *c("SRANDMEMBER", "set", 3))
    c("RPOP", "list")
    c("XADD", "stream", "2-1", "f", "w")
    c("MULTI")
    c("SELECT", 1)  # the SELECT the AOF gets sits inside the transaction
    c("SET", "db1:tx", "in a transaction")
    c("DEL", "db1:0")
    c("EXEC")
    c("SELECT", 0)
    c("SELECT", 5)
    c("SET", "db5:only", g.alnum(rng, 30))
    c("SELECT", 0)


def batch4(c, rng):
    c("SET", "str:a", "back again")
    c("UNLINK", "hash")
    c("HSET", "hash", "new", "hash")
    c("APPEND", "str:script", "+more")
    c("SELECT", 1)
    c("INCR", "db1:counter")
    c("SELECT", 0)


def batch5(c, rng):
    c("MULTI")
    c("RPUSH", "list", *[g.alnum(rng, 3) for _ in range(4)])
    c("ZADD", "zset", 0, "zero")
    c("EXEC")
    c("SET", "last", "the last write", "PXAT", g.Y2100_MS + 99)
    c("SELECT", 2)
    c("DEL", "db2:ttl")
    c("SELECT", 0)


BATCHES = [batch1, batch2, batch3, batch4, batch5]


# --------------------------------------------------------------------------- one run


def make_set(args, name, preamble):
    rng = random.Random(f"{args.seed}:aof:{name}")
    extra = ["--appendonly", "yes", "--aof-timestamp-enabled", "yes",
             "--aof-use-rdb-preamble", "yes" if preamble else "no",
             "--appenddirname", "appendonlydir", "--aof-disable-auto-gc", "yes"]
    target = args.out / name
    if target.exists():
        shutil.rmtree(target)
    (target / "expected").mkdir(parents=True)
    boundaries = []
    with tempfile.TemporaryDirectory(prefix="rdbtool-aofgen-") as tmp:
        aofdir = Path(tmp) / "appendonlydir"
        with g.Server(args.redis_server, tmp, extra) as srv:
            c = srv.client
            c("DEBUG", "SET-ACTIVE-EXPIRE", 0)
            last = server_second(c)
            docs = {}
            for i, batch in enumerate(BATCHES, 1):
                next_second(last)
                batch(c, rng)
                last = server_second(c)
                dump_ms = g.server_time_ms(c)
                doc = g.canonical_dump(c, f"aof/{name}/batch-{i}", args.seed, "AOF", dump_ms)
                rel = f"expected/batch-{i}.json"
                g.write_expected(target / rel, doc)
                docs[i] = doc
                boundaries.append({"name": f"batch-{i}", "time": last, "utc": utc(last),
                                   "expected": rel, "reachable": i >= 3})
                if i == 2:
                    next_second(last)
                    rewrite_start = server_second(c)
                    c("BGREWRITEAOF")
                    if wait_no_rewrite(c) != "ok":
                        raise RuntimeError("BGREWRITEAOF failed")
                    last = server_second(c)
                    boundaries.append({"name": "rewrite", "time": last, "utc": utc(last),
                                       "expected": "expected/batch-2.json", "reachable": True})
                if i == 3:
                    # A rewrite that fails: its new INCR file stays, so the set has two.
                    c("CONFIG", "SET", "rdb-key-save-delay", 1000000)
                    c("BGREWRITEAOF")
                    deadline = time.monotonic() + 10
                    while not (kids := children_of(srv.proc.pid)):
                        if time.monotonic() > deadline:
                            raise RuntimeError("no rewrite child found")
                        time.sleep(0.02)
                    for k in kids:
                        os.kill(k, signal.SIGKILL)
                    if wait_no_rewrite(c) != "err":
                        raise RuntimeError("the rewrite was meant to fail")
                    c("CONFIG", "SET", "rdb-key-save-delay", 0)
            final = docs[len(BATCHES)]
        shutil.copytree(aofdir, target / "appendonlydir")
    manifest = (target / "appendonlydir" / "appendonly.aof.manifest").read_text()
    incr = [ln for ln in manifest.splitlines() if ln.endswith("type i")]
    hist = [ln for ln in manifest.splitlines() if ln.endswith("type h")]
    if len(incr) != 2 or len(hist) != 2:
        raise RuntimeError(f"{name}: unexpected manifest:\n{manifest}")
    meta = {
        "server": final["server"]["redis_version"],
        "aof_use_rdb_preamble": preamble,
        "rewrite_start": rewrite_start,
        "boundaries": boundaries,
        "manifest": manifest.splitlines(),
    }
    (target / "batches.json").write_text(json.dumps(meta, indent=1) + "\n", encoding="utf-8")
    check_aof(target / "appendonlydir" / "appendonly.aof.manifest")
    load_check(args, target / "appendonlydir", final)
    return meta


def check_aof(manifest):
    out = subprocess.run(["redis-check-aof", str(manifest)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "is valid" not in text:
        raise RuntimeError(f"redis-check-aof rejected {manifest}:\n{text}")


def load_check(args, aofdir, doc):
    with tempfile.TemporaryDirectory(prefix="rdbtool-aofload-") as tmp:
        shutil.copytree(aofdir, Path(tmp) / "appendonlydir")
        extra = ["--appendonly", "yes", "--appenddirname", "appendonlydir"]
        with g.Server(args.redis_server, tmp, extra) as srv:
            c = srv.client
            loaded = g.canonical_dump(c, doc["server"]["fixture"], args.seed, "AOF", g.server_time_ms(c))
    if g.logical(loaded) != g.logical(doc):
        raise RuntimeError(f"{aofdir}: the reloaded content differs from the last batch")


README = """\
# testdata/aof/: AOF directories written by Debian's redis-server {version}

Made by `scripts/gen_aof_testdata.py` (stdlib only; reuses `gen_testdata.py`'s server, client and
dump helpers), seed {seed}. Each run: a private server with `--appendonly yes
--aof-timestamp-enabled yes --aof-disable-auto-gc yes` and `DEBUG SET-ACTIVE-EXPIRE 0`, five
batches of writes, each starting in a new second; after each batch the dataset is read back from
the server into `expected/batch-N.json` (layout of `testdata/expected/`, see `../README.md`) and
its boundary time (server TIME in whole seconds after the batch) goes to `batches.json`.

* After batch 2: a pause, then `BGREWRITEAOF`: base seq 2; base 1 and incr 1 become HISTORY (kept
  on disk by `aof-disable-auto-gc`). Boundaries of batches 1 and 2 are before the base's time:
  `reachable: false`. The boundary `rewrite` (just after the rewrite) has batch 2's dataset.
* After batch 3: a `BGREWRITEAOF` whose child is killed: the failed rewrite leaves INCR seq 3 after
  INCR seq 2, so batches 4 and 5 are in a second INCR file.
* Batches hold MULTI/EXEC blocks (one with a SELECT inside), a Lua script (logged as MULTI/EXEC),
  FUNCTION LOAD / FCALL (logged as INCRBY), TTLs (logged as PEXPIREAT / PXAT), dbs 0, 1, 2, 5.

| set | base | files | bytes |
|---|---|---|---|
{rows}

Checked with `redis-check-aof`; the whole set loads into a fresh server with batch 5's dataset.
A rerun gives the same logical data except the `#TS:` values, the boundary times and the
relative TTLs.

The TTLs are absolute in the AOF (`PXAT`, `PEXPIREAT`). `db2:ttl` gets a 7-day TTL: it expires a
week after a run (the committed sets: on 2026-11-28), and a replay then drops it. The tests
compare a replayed dataset with the recorded one minus the keys whose expire time had passed when
the replay began (`assert_server_holds` in `tests/aof.rs`), so they hold on any date.
"""


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "testdata" / "aof")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis-server", default="redis-server")
    args = ap.parse_args()
    for tool in (args.redis_server, "redis-check-aof"):
        if shutil.which(tool) is None:
            sys.exit(f"{tool} not found (apt-get install redis-server)")
    args.out.mkdir(parents=True, exist_ok=True)
    rows, version = [], "?"
    for name, preamble in (("preamble", True), ("plain", False)):
        meta = make_set(args, name, preamble)
        version = meta["server"]
        d = args.out / name / "appendonlydir"
        files = sorted(d.iterdir())
        size = sum(p.stat().st_size for p in files)
        base = "RDB" if preamble else "AOF (RESP)"
        rows.append(f"| `{name}/` | {base} | {len(files)} | {size} |")
        print(f"{name}: {len(files)} files, {size} bytes")
    (args.out / "README.md").write_text(
        README.format(version=version, seed=args.seed, rows="\n".join(rows)), encoding="utf-8")


if __name__ == "__main__":
    main()
