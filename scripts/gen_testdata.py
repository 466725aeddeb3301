#!/usr/bin/env python3
"""Generate rdbtool's committed test data with a real redis-server (Debian's 7.0.15).

    scripts/gen_testdata.py [--out testdata] [--seed 7] [--redis-server redis-server]

Every file comes from a private redis-server started here: loopback only, a port the OS
hands out, a temp dir, `--save '' --appendonly no --enable-debug-command local`. The
dataset is filled over a small RESP client (below), then SAVE, then the server's own
view is read back (not the file) into testdata/expected/NAME.json, and the server is
stopped by its PID. Each file draws from a PRNG seeded with --seed, so a rerun gives the same
logical data except for what Redis decides itself (ctime/used-mem AUX fields, PEL
delivery and consumer seen times, the few relative TTLs, the AOF `#TS:` lines).

Python 3.11 standard library only.
"""

import argparse
import base64
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

# 2100-01-01T00:00:00Z in ms: absolute TTLs start here so they never end.
Y2100_MS = 4102444800000
HOUR_MS = 3600 * 1000
YEAR_MS = 365 * 24 * HOUR_MS


# --------------------------------------------------------------------------- RESP client


class RespError(Exception):
    """An error reply (`-ERR ...`)."""


class Client:
    """Minimal RESP2 client. Bulk strings come back as bytes, simple strings as str."""

    def __init__(self, port):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=120)
        self.reader = self.sock.makefile("rb")

    def close(self):
        self.reader.close()
        self.sock.close()

    def __call__(self, *args):
        self.send(args)
        reply = self.read()
        if isinstance(reply, RespError):
            raise reply
        return reply

    def send(self, args):
        out = [b"*%d\r\n" % len(args)]
        for arg in args:
            if isinstance(arg, str):
                arg = arg.encode()
            elif isinstance(arg, float):
                arg = repr(arg).encode()
            elif isinstance(arg, int):
                arg = str(arg).encode()
            out.append(b"$%d\r\n%s\r\n" % (len(arg), arg))
        self.sock.sendall(b"".join(out))

    def read(self):
        line = self.reader.readline()
        if not line.endswith(b"\r\n"):
            raise ConnectionError("connection closed mid-reply")
        kind, rest = line[:1], line[1:-2]
        if kind == b"+":
            return rest.decode()
        if kind == b"-":
            return RespError(rest.decode(errors="replace"))
        if kind == b":":
            return int(rest)
        if kind == b"$":
            n = int(rest)
            if n < 0:
                return None
            data = self.reader.read(n + 2)
            return data[:-2]
        if kind == b"*":
            n = int(rest)
            if n < 0:
                return None
            return [self.read() for _ in range(n)]
        raise ValueError(f"unexpected RESP line {line!r}")


# --------------------------------------------------------------------------- server


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Server:
    """A redis-server child on 127.0.0.1:<free port>, stopped by its own PID."""

    def __init__(self, binary, workdir, extra=()):
        self.dir = Path(workdir)
        self.dir.mkdir(parents=True, exist_ok=True)
        self.log = self.dir / "redis.log"
        for _attempt in range(5):
            self.port = free_port()
            args = [
                binary, "--port", str(self.port), "--bind", "127.0.0.1",
                "--dir", str(self.dir), "--dbfilename", "dump.rdb",
                "--save", "", "--appendonly", "no", "--daemonize", "no",
                "--enable-debug-command", "local", "--logfile", str(self.log),
                *extra,
            ]
            self.proc = subprocess.Popen(args, stdin=subprocess.DEVNULL)
            if self._wait_ready():
                self.client = Client(self.port)
                return
            self._stop_proc()
        raise RuntimeError(f"redis-server did not start; see {self.log}")

    def _wait_ready(self):
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False  # most likely lost the port race: try another one
            try:
                c = Client(self.port)
                try:
                    if c("PING") == "PONG":
                        return True
                except RespError:
                    pass  # LOADING
                finally:
                    c.close()
            except OSError:
                pass
            time.sleep(0.05)
        return False

    def _stop_proc(self):
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.kill(self.proc.pid, signal.SIGKILL)
                self.proc.wait()

    def stop(self):
        if hasattr(self, "client"):
            self.client.close()
            del self.client
        self._stop_proc()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


# --------------------------------------------------------------------------- canonical dump


def jbytes(b):
    """Bytes as a JSON string when valid UTF-8, else {"b64": ...} (the shared fixtures' rule)."""
    try:
        return b.decode("utf-8")
    except UnicodeDecodeError:
        return {"b64": base64.b64encode(b).decode()}


def jvalue(v):
    """A RESP reply as JSON: bytes per jbytes, arrays recursively, ints and nil as they are."""
    if isinstance(v, bytes):
        return jbytes(v)
    if isinstance(v, list):
        return [jvalue(x) for x in v]
    return v


def pairs(flat):
    return [flat[i:i + 2] for i in range(0, len(flat), 2)]


def jscore(raw):
    s = raw.decode()
    if s in ("inf", "-inf"):
        return s
    return float(s)


STREAM_INFO_KEYS = ["length", "last-generated-id", "max-deleted-entry-id", "entries-added",
                    "recorded-first-entry-id", "groups"]


def dump_value(c, key, kind):
    if kind == "string":
        return c("GET", key)
    if kind == "list":
        return c("LRANGE", key, 0, -1)
    if kind == "set":
        return sorted(c("SMEMBERS", key))
    if kind == "zset":
        return sorted(pairs(c("ZRANGE", key, 0, -1, "WITHSCORES")), key=lambda p: p[0])
    if kind == "hash":
        return sorted(pairs(c("HGETALL", key)), key=lambda p: p[0])
    if kind == "stream":
        return [[eid, pairs(fields)] for eid, fields in c("XRANGE", key, "-", "+")]
    raise ValueError(f"unexpected type {kind} for {key!r}")


def dump_entry(c, key, dump_ms):
    kind = c("TYPE", key)
    expire_at = c("PEXPIRETIME", key)
    value = dump_value(c, key, kind)
    if kind == "zset":
        value = [[jbytes(m), jscore(s)] for m, s in value]
    else:
        value = jvalue(value)
    entry = {
        "key": jbytes(key),
        "type": kind,
        "pttl": expire_at - dump_ms if expire_at >= 0 else -1,
        "expire_at_ms": expire_at,
        "value": value,
    }
    if kind == "stream":
        # COUNT 0 = the whole PEL; entries are already in "value".
        info = dict(pairs(c("XINFO", "STREAM", key, "FULL", "COUNT", 0)))
        info = {k.decode(): v for k, v in info.items()}
        entry["stream_info"] = {k: jvalue(info[k]) for k in STREAM_INFO_KEYS}
    entry["encoding"] = c("OBJECT", "ENCODING", key).decode()
    return entry


def dump_functions(c):
    libs = []
    for lib in c("FUNCTION", "LIST", "WITHCODE"):
        lib = jvalue(lib)
        i = lib.index("functions")
        lib[i + 1] = sorted(lib[i + 1], key=lambda f: f[f.index("name") + 1])
        libs.append(lib)
    return sorted(libs, key=lambda lib: lib[lib.index("library_name") + 1])


def info_field(c, section, name):
    for line in c("INFO", section).decode().splitlines():
        if line.startswith(name + ":"):
            return line.split(":", 1)[1]
    return None


def server_time_ms(c):
    sec, usec = c("TIME")
    return int(sec) * 1000 + int(usec) // 1000


def canonical_dump(c, fixture, seed, rdb_header, dump_ms):
    """The server's own view of its whole dataset, in the shared fixtures' expected.json layout."""
    dbs = {}
    for db in range(16):
        c("SELECT", db)
        if c("DBSIZE") == 0:
            continue
        keys, cursor = set(), b"0"
        while True:
            cursor, batch = c("SCAN", cursor, "COUNT", 1000)
            keys.update(batch)
            if cursor == b"0":
                break
        dbs[str(db)] = [dump_entry(c, k, dump_ms) for k in sorted(keys)]
    c("SELECT", 0)
    version = info_field(c, "server", "redis_version")
    server = {"redis_version": version, "dump_time_ms": dump_ms, "server_name": "redis",
              "version": version, "rdb_header": rdb_header, "fixture": fixture, "seed": seed}
    return {"server": server, "functions": dump_functions(c), "dbs": dbs}


def write_expected(path, doc):
    """One entry per line, like ../shared/fixtures/*/expected.json."""
    dumps = lambda v: json.dumps(v, ensure_ascii=False)  # noqa: E731
    lines = ["{", ' "server": ' + dumps(doc["server"]) + ",",
             ' "functions": ' + dumps(doc["functions"]) + ",", ' "dbs": {']
    dbs = sorted(doc["dbs"].items(), key=lambda kv: int(kv[0]))
    for i, (db, entries) in enumerate(dbs):
        lines.append(f'  "{db}": [')
        lines += ["   " + dumps(e) + ("," if j + 1 < len(entries) else "")
                  for j, e in enumerate(entries)]
        lines.append("  ]" + ("," if i + 1 < len(dbs) else ""))
    lines += [" }", "}"]
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


# --------------------------------------------------------------------------- value helpers


ALNUM = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


def alnum(rng, n):
    return "".join(rng.choice(ALNUM) for _ in range(n))


def binary(rng, n):
    """n bytes that are never valid UTF-8 (they start with 0xFF 0xFE)."""
    return (b"\xff\xfe" + rng.randbytes(max(n - 2, 0)))[:n]


def compressible(n, word="value:"):
    """Repetitive text that LZF shrinks well."""
    out, i = [], 0
    while sum(map(len, out)) < n:
        out.append(f"{word}{i:06d};")
        i += 1
    return "".join(out)[:n]


# Scores that exercise the double / listpack edge cases (-0.0 becomes int 0 in a listpack).
SPECIAL_SCORES = [0.0, -0.0, 1.5, -2.25, 1e-300, 1.7976931348623157e308, float("inf"),
                  float("-inf"), 42.0, -7.0, 0.1, 5e-324, 1e15, 123456789012345678.0]

INT_EDGES = [0, 1, -1, 7, 12, 127, 128, -128, 255, 256, 4095, 4096, -4096, -4097, 9999, 10000,
             32767, -32768, 32768, 65535, 8388607, -8388608, 8388608, 2147483647, -2147483648,
             2147483648, 4294967296, 123456789012345, 2**63 - 1, -2**63]

# Integer-looking strings that must stay strings (not canonical, or out of i64 range).
NOT_INTS = ["007", "+1", "-0", " 1", "1 ", "00", "1.5", "1e3", "0x1f", "-", "",
            "9223372036854775808", "-9223372036854775809", "18446744073709551616"]


def fn_lib_code(name, body):
    return f"#!lua name={name}\n{body}"


LIB_MATH = fn_lib_code("mathlib", (
    "local function add(keys, args) return tonumber(args[1]) + tonumber(args[2]) end\n"
    "local function bump(keys, args) return redis.call('INCRBY', keys[1], args[1] or 1) end\n"
    "redis.register_function{function_name='add', callback=add, flags={'no-writes'},"
    " description='adds two numbers'}\n"
    "redis.register_function('bump', bump)\n"))
LIB_TEXT = fn_lib_code("textlib", (
    "redis.register_function('shout', function(keys, args) return string.upper(args[1]) end)\n"))
LIB_TINY = fn_lib_code("t", "redis.register_function('one', function() return 1 end)\n")


# --------------------------------------------------------------------------- datasets


def fill_strings(c, rng):
    for n in INT_EDGES:
        c("SET", f"str:int:{n}", n)
    for i, s in enumerate(NOT_INTS):
        c("SET", f"str:notint:{i}", s)
    for n in (1, 10, 20, 21, 30, 44):
        c("SET", f"str:embstr:{n}", alnum(rng, n))
    for n in (45, 64, 100, 300, 1000, 20000):  # 20000 > 16383: a 32-bit string length
        c("SET", f"str:raw:{n}", alnum(rng, n))
    c("SET", "str:lzf:21", "a" * 21)  # just above the 20-byte LZF threshold
    c("SET", "str:lzf:1k", "abcdefgh" * 128)
    c("SET", "str:lzf:4k", compressible(4096))
    c("SET", "str:lzf:10k", "A" * 10240)
    c("SET", "str:lzf:20k", compressible(20000, "row="))  # compressed, 32-bit raw length
    for i, n in enumerate((1, 2, 8, 33, 64)):
        c("SET", f"str:bin:{i}", binary(rng, n))
    c("SET", "str:bin:2k", binary(rng, 2048))  # incompressible, not UTF-8
    c("SET", "str:ctl", b"line1\r\nline2\x00\ttab\x7f")
    c("SET", "str:utf8", "h\u00e9llo w\u00f6rld \u2713 \u65e5\u672c\u8a9e \U0001f600")
    c("SET", "str:empty", "")
    c("SET", "", "value-of-the-empty-key")
    c("SET", b"key with spaces\nand a newline", "odd key")
    c("SET", "k" * 300, "a 300-byte key name")
    for i in range(4):
        c("SET", b"\x00\xffbin-key\x80" + rng.randbytes(1 + i * 3), binary(rng, 4 + 7 * i))
    c("SET", b"\xff\xfeint-under-binary-key", 31337)
    for n in (0, -1, 300, -2147483648, 4294967296):  # key names the RDB stores as integers
        c("SET", str(n), f"key named {n}")


def fill_lists(c, rng):
    c("RPUSH", "list:lp:small", "a", "b", "c", 1, 2, 3)
    c("RPUSH", "list:lp:ints", *INT_EDGES, *NOT_INTS)
    # listpack string lengths at the 6-bit / 12-bit / 32-bit encoding and backlen boundaries
    c("RPUSH", "list:lp:strlens", *[alnum(rng, n) for n in (0, 1, 63, 64, 127, 128, 4095, 4096)])
    c("RPUSH", "list:lp:binary", *[binary(rng, rng.randint(2, 40)) for _ in range(6)], "", "x")
    c("LPUSH", "list:lp:lpushed", *[f"e{i}" for i in range(10)])

    c("CONFIG", "SET", "list-max-listpack-size", 8)
    c("RPUSH", "list:ql:8per", *[rng.choice([str(rng.randint(-10**6, 10**6)), alnum(rng, 6)])
                                 for _ in range(100)])
    c("CONFIG", "SET", "list-max-listpack-size", -2)
    c("RPUSH", "list:ql:long", *[f"item-{i:05d}-{alnum(rng, 4)}" for i in range(1500)])

    # inner nodes LZF-compressed in memory -> written as compressed node STRs
    c("CONFIG", "SET", "list-compress-depth", 1)
    c("CONFIG", "SET", "list-max-listpack-size", 16)
    c("RPUSH", "list:ql:compressed", *[compressible(40, f"n{i:04d}:") for i in range(200)])
    c("CONFIG", "SET", "list-max-listpack-size", -2)
    c("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1k")
    c("RPUSH", "list:ql:plain-lzf", "head", *[compressible(2000, f"big{i}:") for i in range(4)],
      "tail")
    c("CONFIG", "SET", "list-compress-depth", 0)

    # PLAIN nodes: elements above the packed threshold get a node each
    c("RPUSH", "list:ql:plain", "small-1", alnum(rng, 1500), "small-2", compressible(3000),
      binary(rng, 2048), "small-3")
    c("LPUSH", "list:ql:plain", alnum(rng, 1100))
    c("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 0)  # 0 = back to the default (1 GB)


def fill_sets(c, rng):
    c("SADD", "set:intset:16", 1, 2, 3, -5, 0, 32767, -32768)
    c("SADD", "set:intset:32", 7, 40000, -2147483648, 2147483647, -1)
    c("SADD", "set:intset:64", 1, 5000000000, 2**63 - 1, -2**63)
    c("SADD", "set:intset:grown", 1, 2, 3, 5000000000)
    c("SREM", "set:intset:grown", 5000000000)  # stays 64-bit wide
    c("SADD", "set:intset:512", *rng.sample(range(-10**6, 10**6), 512))
    c("SADD", "set:ht:513ints", *rng.sample(range(-10**9, 10**9), 513))
    c("SADD", "set:ht:small", "a", "b", "c")
    c("SADD", "set:ht:mixed", 1, "a", "-0", "007", "", 2**63 - 1)
    c("SADD", "set:ht:large", *[alnum(rng, rng.randint(1, 20)) for _ in range(200)])
    c("SADD", "set:ht:binary", *[binary(rng, rng.randint(2, 30)) for _ in range(12)])
    c("SADD", "set:ht:long", *[alnum(rng, 100) for _ in range(5)])


def fill_zsets(c, rng):
    special = []
    for i, s in enumerate(SPECIAL_SCORES):
        special += [s, f"special-{i}"]
    c("ZADD", "zset:lp:special", *special)
    c("ZADD", "zset:lp:ties", *[x for m in "edcba" for x in (1, m)], 2, "z", 0, "y")
    c("ZADD", "zset:lp:binary", *[x for i in range(6) for x in (i * 0.5, binary(rng, 3 + i))])
    c("ZADD", "zset:lp:128", *[x for i in range(128) for x in (rng.randint(-1000, 1000),
                                                                 f"m{i:03d}")])
    # pads first: a listpack converted to a skiplist would turn -0.0 (int 0 there) into 0.0
    c("ZADD", "zset:sl:special",
      *[x for i in range(150) for x in (round(rng.uniform(-1e6, 1e6), 3), f"pad-{i}")])
    c("ZADD", "zset:sl:special", *special)
    c("ZADD", "zset:sl:longmember", 1, "x", 2, "M" * 80)
    c("ZADD", "zset:sl:ints", *[x for i in range(200) for x in (i, i)])
    c("ZADD", "zset:sl:binary", *[x for i in range(130) for x in (i, binary(rng, 4 + i % 9))])


def fill_hashes(c, rng):
    c("HSET", "hash:lp:small", "f1", "v1", "f2", 100, "f3", -5, "f4", "", "", "empty-field")
    c("HSET", "hash:lp:ints", *[x for n in INT_EDGES for x in (n, -n if n != -2**63 else 0)])
    c("HSET", "hash:lp:binary", *[x for _ in range(6) for x in (binary(rng, rng.randint(2, 20)),
                                                               binary(rng, rng.randint(2, 60)))])
    c("HSET", "hash:lp:512", *[x for i in range(512) for x in (f"f{i}", i)])
    c("CONFIG", "SET", "hash-max-listpack-value", 5000)
    c("HSET", "hash:lp:bigvals", *[x for n in (63, 64, 4095, 4096) for x in (f"len{n}",
                                                                            alnum(rng, n))])
    c("CONFIG", "SET", "hash-max-listpack-value", 64)
    c("HSET", "hash:ht:513", *[x for i in range(513) for x in (f"field:{i}", alnum(rng, 8))])
    c("HSET", "hash:ht:longval", "a", 1, "b", "two", "long", alnum(rng, 100))
    c("HSET", "hash:ht:binary", "plain", "ascii",
      *[x for _ in range(20) for x in (binary(rng, rng.randint(2, 20)), binary(rng, 70))])
    c("HSET", "hash:ht:compressible", "a", compressible(500), "b", compressible(300, "b:"))


def xadd_ids(c, key, start_ms, n, fields_for, step=10):
    for i in range(n):
        c("XADD", key, f"{start_ms + i * step}-{i % 3}", *fields_for(i))


def fill_streams(c, rng):
    def reading(i):
        return ["temp", rng.randint(-20, 40), "hum", rng.randint(0, 100)]

    def mixed(i):
        if i % 7 == 3:
            return ["event", alnum(rng, 6), "payload", rng.choice([alnum(rng, 12),
                                                                  binary(rng, 5)]), "n", i]
        return reading(i)

    # several nodes (10 entries each), XDEL, XTRIM, a group with a PEL
    c("CONFIG", "SET", "stream-node-max-entries", 10)
    xadd_ids(c, "stream:big", 1700000000000, 160, mixed)
    c("XDEL", "stream:big", *[f"{1700000000000 + i * 10}-{i % 3}" for i in (40, 41, 77, 100, 155)])
    c("XTRIM", "stream:big", "MAXLEN", 140)
    c("XGROUP", "CREATE", "stream:big", "readers", "0")
    c("XREADGROUP", "GROUP", "readers", "r1", "COUNT", 30, "STREAMS", "stream:big", ">")
    c("CONFIG", "SET", "stream-node-max-entries", 100)

    # two groups, PELs, XCLAIM, a consumer without PEL, XACK, ENTRIESREAD
    key = "stream:groups"
    xadd_ids(c, key, 1700000010000, 30, mixed)
    c("XGROUP", "CREATE", key, "g1", "0")
    c("XGROUP", "CREATE", key, "g2", "0", "ENTRIESREAD", 0)
    c("XREADGROUP", "GROUP", "g1", "alice", "COUNT", 5, "STREAMS", key, ">")
    c("XREADGROUP", "GROUP", "g1", "bob", "COUNT", 4, "STREAMS", key, ">")
    c("XREADGROUP", "GROUP", "g1", "carol", "COUNT", 3, "STREAMS", key, ">")
    alice = [f"{1700000010000 + i * 10}-{i % 3}" for i in range(5)]
    c("XCLAIM", key, "g1", "carol", 0, *alice[3:])
    c("XACK", key, "g1", f"{1700000010000 + 60}-0")  # one of bob's
    c("XGROUP", "CREATECONSUMER", key, "g1", "idle")
    c("XREADGROUP", "GROUP", "g2", "dave", "COUNT", 3, "STREAMS", key, ">")
    c("XREADGROUP", "GROUP", "g2", "erin", "COUNT", 2, "STREAMS", key, ">")
    c("XACK", key, "g2", *[f"{1700000010000 + i * 10}-{i % 3}" for i in range(3, 5)])

    # first entry (the node's master entry) deleted
    xadd_ids(c, "stream:xdel-first", 1000, 5, reading)
    c("XDEL", "stream:xdel-first", "1000-0")
    c("XADD", "stream:emptied", "5-1", "a", 1)
    c("XADD", "stream:emptied", "5-2", "a", 2)
    c("XDEL", "stream:emptied", "5-1", "5-2")
    c("XGROUP", "CREATE", "stream:mkstream", "waiting", "$", "MKSTREAM")
    xadd_ids(c, "stream:binary", 1700000020000, 6,
             lambda i: [binary(rng, 3 + i), binary(rng, 10), "plain", i])
    xadd_ids(c, "stream:minid", 1700000030000, 20, reading)
    c("XTRIM", "stream:minid", "MINID", 1700000030100)
    xadd_ids(c, "stream:setid", 10, 4, lambda i: ["n", i])
    c("XSETID", "stream:setid", "999-9", "ENTRIESADDED", 1000, "MAXDELETEDID", "500-0")
    xadd_ids(c, "stream:ints", 1, 6,
             lambda i: ["v", INT_EDGES[-1 - i], "w", INT_EDGES[i * 4]], step=1)


def fill_small_mixed(c, rng, db, shared_type):
    """A smaller mixed dataset for dbs 1-3; names repeat across dbs on purpose."""
    c("SELECT", db)
    name = "shared:name"
    if shared_type == "list":
        c("RPUSH", name, "l", db, alnum(rng, 5))
    elif shared_type == "hash":
        c("HSET", name, "db", db, "kind", "hash")
    elif shared_type == "set":
        c("SADD", name, db, "x", "y")
    c("SET", "common:counter", db * 1000 + 1)
    c("SET", "common:text", f"text in db {db}")
    c("SET", "str:int:0", 0)  # same name as in db 0
    for i in range(8):
        c("SET", f"s:{i}", rng.choice([alnum(rng, rng.randint(1, 60)), rng.randint(-10**9, 10**9)]))
        c("RPUSH", f"l:{i}", *[alnum(rng, 4) for _ in range(rng.randint(1, 12))])
        c("SADD", f"st:{i}", *rng.sample(range(1000), rng.randint(1, 10)))
        c("ZADD", f"z:{i}", *[x for j in range(rng.randint(1, 10)) for x in (j * 1.25, f"m{j}")])
        c("HSET", f"h:{i}", *[x for j in range(rng.randint(1, 8)) for x in (f"f{j}", alnum(rng, 6))])
    xadd_ids(c, "x:0", 1700000040000 + db, 5, lambda i: ["db", db, "i", i])
    c("SELECT", 0)


def apply_ttls(c, rng, dbs, share=0.2):
    """About `share` of the keys get a TTL: mostly absolute after 2100, some relative 1 h - 1 y."""
    for db in dbs:
        c("SELECT", db)
        keys, cursor = set(), b"0"
        while True:
            cursor, batch = c("SCAN", cursor, "COUNT", 1000)
            keys.update(batch)
            if cursor == b"0":
                break
        keys = sorted(keys)
        for key in rng.sample(keys, round(len(keys) * share)):
            if rng.random() < 0.8:
                c("PEXPIREAT", key, Y2100_MS + rng.randint(0, 10 * YEAR_MS))
            else:
                c("PEXPIRE", key, rng.randint(HOUR_MS, YEAR_MS))
    c("SELECT", 0)


def dataset_all_types(c, rng):
    fill_strings(c, rng)
    fill_lists(c, rng)
    fill_sets(c, rng)
    fill_zsets(c, rng)
    fill_hashes(c, rng)
    fill_streams(c, rng)
    for db, shared_type in ((1, "list"), (2, "hash"), (3, "set")):
        fill_small_mixed(c, rng, db, shared_type)
    c("SET", "shared:name", "a string in db 0")
    c("SELECT", 3)
    c("SET", "", "the empty key name in db 3")
    c("SELECT", 0)
    c("FUNCTION", "LOAD", LIB_MATH)
    c("FUNCTION", "LOAD", LIB_TEXT)
    c("FCALL", "bump", 1, "fn:counter", 5)
    apply_ttls(c, rng, range(4))
    c("EXPIREAT", "str:embstr:44", 253402300799)  # 9999-12-31T23:59:59Z


def dataset_small(c, rng):
    """About a dozen keys of every type, db0 only, for exhaustive corruption tests."""
    c("SET", "int", 12345)
    c("SET", "42", -1234567)  # int-encoded key name (INT8) and value (INT32)
    c("SET", "big", 2**63 - 1)
    c("SET", "emb", "hello world")
    c("SET", "lzf", "ab" * 40)
    c("SET", b"\xffbin", binary(rng, 9))
    c("RPUSH", "list", "a", 1, -300, alnum(rng, 70))
    c("SADD", "iset", 1, 300, 70000)
    c("SADD", "hset", "a", "b")
    c("ZADD", "zset", 1, "a", 2.5, "b", "-inf", "c")
    c("HSET", "hash", "f1", "v1", "f2", 2)
    c("XADD", "strm", "1-1", "f", "v")
    c("XADD", "strm", "1-2", "f", "w")
    c("XGROUP", "CREATE", "strm", "g", "0")
    c("XREADGROUP", "GROUP", "g", "c", "COUNT", 1, "STREAMS", "strm", ">")
    c("HSET", "hash:ht", "long", "L" * 70)  # > 64 bytes: hashtable
    c("ZADD", "zset:sl", 1, "M" * 70)  # > 64 bytes: skiplist
    c("DEBUG", "QUICKLIST-PACKED-THRESHOLD", "1k")
    c("RPUSH", "list:plain", "s", "P" * 1100)  # a PLAIN node (LZF in the file)
    c("DEBUG", "QUICKLIST-PACKED-THRESHOLD", 0)
    c("PEXPIREAT", "emb", Y2100_MS + 12345)
    c("FUNCTION", "LOAD", LIB_TINY)


def dataset_plain_mix(c, rng):
    """A small mix with compressible strings, used for the no-checksum / uncompressed files."""
    c("SET", "str:int", -42)
    c("SET", "str:emb", alnum(rng, 20))
    c("SET", "str:lzf-able", compressible(2000))
    c("SET", "str:aaaa", "a" * 300)
    c("SET", "str:bin", binary(rng, 40))
    c("RPUSH", "list", *[compressible(30, f"e{i}:") for i in range(20)])
    c("SADD", "set:intset", 5, 6, 7)
    c("SADD", "set:ht", *[compressible(25, f"m{i}:") for i in range(5)])
    c("ZADD", "zset", 1, compressible(30), 2, "b")
    c("HSET", "hash", "f", compressible(60), "g", 1)
    c("HSET", "hash:ht", "long", compressible(200))
    c("XADD", "stream", "1-1", "msg", compressible(50))
    c("PEXPIREAT", "str:emb", Y2100_MS + 1)
    c("SELECT", 1)
    c("SET", "str:int", 7)
    c("SELECT", 0)


# --------------------------------------------------------------------------- files


def check_rdb(path):
    out = subprocess.run(["redis-check-rdb", str(path)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "RDB looks OK" not in text:
        raise RuntimeError(f"redis-check-rdb rejected {path}:\n{text}")
    return text


def check_aof(manifest):
    out = subprocess.run(["redis-check-aof", str(manifest)], stdin=subprocess.DEVNULL,
                         capture_output=True, text=True)
    text = out.stdout + out.stderr
    if out.returncode != 0 or "is valid" not in text:
        raise RuntimeError(f"redis-check-aof rejected {manifest}:\n{text}")
    return text


def logical(doc):
    """dbs and functions without the fields that depend on when or how the data was read."""
    dbs = {db: [{k: v for k, v in e.items() if k not in ("pttl", "encoding")} for e in entries]
           for db, entries in doc["dbs"].items()}
    return {"functions": doc["functions"], "dbs": dbs}


def load_check(args, path, doc):
    """Load the file (or appendonlydir) into a fresh server: its content must equal `doc`.

    Returns the keys whose OBJECT ENCODING changed on load (db, key, before, after)."""
    with tempfile.TemporaryDirectory(prefix="rdbtool-load-") as tmp:
        if path.is_dir():
            shutil.copytree(path, Path(tmp) / "appendonlydir")
            extra = ["--appendonly", "yes", "--appenddirname", "appendonlydir"]
        else:
            shutil.copyfile(path, Path(tmp) / "dump.rdb")
            extra = []
        with Server(args.redis_server, tmp, extra) as srv:
            c = srv.client
            loaded = canonical_dump(c, doc["server"]["fixture"], args.seed,
                                    doc["server"]["rdb_header"], server_time_ms(c))
    if logical(loaded) != logical(doc):
        raise RuntimeError(f"{path}: the reloaded content differs from the expected JSON")
    written = {(db, json.dumps(e["key"])): e["encoding"]
               for db, entries in doc["dbs"].items() for e in entries}
    changed = []
    for db, entries in loaded["dbs"].items():
        for e in entries:
            was = written[(db, json.dumps(e["key"]))]
            if was != e["encoding"]:
                changed.append((db, e["key"], was, e["encoding"]))
    return changed


def save_rdb(args, name, fill, server_args=(), rng_label=None):
    """One server run: fill, SAVE, read back, copy dump.rdb, write expected JSON."""
    rng = random.Random(f"{args.seed}:{rng_label or name}")
    with tempfile.TemporaryDirectory(prefix="rdbtool-gen-") as tmp, \
            Server(args.redis_server, tmp, server_args) as srv:
        c = srv.client
        fill(c, rng)
        c("SAVE")
        dump_ms = server_time_ms(c)
        dump = Path(tmp) / "dump.rdb"
        header = dump.read_bytes()[:9].decode()
        doc = canonical_dump(c, name, args.seed, header, dump_ms)
        target = args.out / name
        shutil.copyfile(dump, target)
    check_rdb(target)
    write_expected(args.out / "expected" / f"{name}.json", doc)
    return doc


def wait_rewrite(c, aofdir, deadline_s=30, min_seq=2):
    deadline = time.monotonic() + deadline_s
    while time.monotonic() < deadline:
        busy = (info_field(c, "persistence", "aof_rewrite_in_progress") != "0"
                or info_field(c, "persistence", "aof_rewrite_scheduled") != "0")
        manifest = (aofdir / "appendonly.aof.manifest")
        if not busy and manifest.exists() and f".{min_seq}.base.rdb" in manifest.read_text():
            if info_field(c, "persistence", "aof_last_bgrewrite_status") != "ok":
                raise RuntimeError("BGREWRITEAOF failed")
            return
        time.sleep(0.05)
    raise RuntimeError("BGREWRITEAOF did not finish")


def make_preamble_aof(args, name="preamble-aof"):
    """appendonlydir whose base is an RDB preamble (after BGREWRITEAOF) plus an incr file."""
    rng = random.Random(f"{args.seed}:{name}")
    extra = ["--appendonly", "yes", "--aof-use-rdb-preamble", "yes",
             "--aof-timestamp-enabled", "yes", "--appenddirname", "appendonlydir"]
    with tempfile.TemporaryDirectory(prefix="rdbtool-gen-") as tmp:
        aofdir = Path(tmp) / "appendonlydir"
        with Server(args.redis_server, tmp, extra) as srv:
            c = srv.client
            dataset_small(c, rng)  # batch 1: ends up in the RDB base
            c("SELECT", 1)
            c("SET", "db1:key", "in db 1")
            c("SELECT", 0)
            c("BGREWRITEAOF")
            wait_rewrite(c, aofdir)
            # A second rewrite: the set is then at base/incr seq 3 with the seq-2 files gone to
            # history and collected, as in a long-running server (and its manifest is not the
            # one-rewrite manifest every Redis writes, which other fixtures hold byte for byte).
            time.sleep(1.1)
            c("BGREWRITEAOF")
            wait_rewrite(c, aofdir, min_seq=3)
            # batch 2: RESP commands in the incr file, spread over >2 s for several #TS lines
            time.sleep(1.1)
            c("SET", "after:1", "one")
            c("INCRBY", "int", 5)
            c("RPUSH", "list", "pushed-after-rewrite")
            c("EXPIRE", "after:1", 7200)  # logged as PEXPIREAT
            time.sleep(1.1)
            c("SET", "after:2", alnum(rng, 10), "PX", 86400000)
            c("HSET", "hash", "f3", "v3")
            c("ZADD", "zset", 9, "d")
            c("SADD", "iset", 2**40)
            c("XADD", "strm", "2-0", "f", "x")
            c("DEL", "lzf")
            c("MULTI")
            c("SET", "tx:a", 1)  # replies QUEUED
            c("SET", "tx:b", 2)
            c("EXEC")
            time.sleep(1.1)
            c("SELECT", 2)
            c("SET", "db2:key", "written after the rewrite")
            c("SELECT", 0)
            c("FUNCTION", "LOAD", LIB_MATH)
            c("FCALL", "bump", 1, "fn:counter", 3)  # logged as the INCRBY it ran
            dump_ms = server_time_ms(c)
            base = next(aofdir.glob("*.base.rdb"))
            doc = canonical_dump(c, name, args.seed, base.read_bytes()[:9].decode(), dump_ms)
        target = args.out / name
        if target.exists():
            shutil.rmtree(target)
        shutil.copytree(aofdir, target)
    for base in target.glob("*.base.rdb"):
        check_rdb(base)
    check_aof(target / "appendonly.aof.manifest")
    write_expected(args.out / "expected" / f"{name}.json", doc)
    return doc


def encoding_summary(doc):
    counts = {}
    for entries in doc["dbs"].values():
        for e in entries:
            k = f'{e["type"]}/{e["encoding"]}'
            counts[k] = counts.get(k, 0) + 1
    return ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())) or "(no keys)"


README_HEAD = """\
# testdata/: files written by Debian's redis-server {version}

Made by `scripts/gen_testdata.sh` (= `python3 scripts/gen_testdata.py`, stdlib only) with Debian's
`redis-server` {version} (`REDIS0010`, RDB version 10), seed {seed}. Regenerate everything with

    scripts/gen_testdata.sh            # needs redis-server / redis-cli / redis-check-rdb on PATH

This file is written by the script too. Each file comes from its own private server (127.0.0.1, a
port the OS picked, a temp dir, `--save '' --appendonly no --enable-debug-command local`): the data
is filled, `SAVE` runs, and the server's own view is read back right away (not from the file) into
`expected/NAME.json`. The script then checks every RDB with `redis-check-rdb` (and the AOF dir with
`redis-check-aof`), and loads each one into a fresh server whose content must equal the JSON.

A rerun gives the same logical data except what Redis decides: the `ctime` / `used-mem` AUX fields,
PEL delivery times and consumer seen times, the relative TTLs (1 h - 1 y; the others are absolute
after 2100-01-01, one is 9999-12-31), `dump_time_ms` and the AOF `#TS:` lines.

## Files

| file | bytes | keys per db | expected |
|---|---|---|---|
{rows}

* `all-types.rdb`: every type in every encoding Redis 7.0 writes, dbs 0-3, two function libraries
  (`mathlib`, `textlib`), {ttl} of {keys} keys with a TTL. Strings: int-encoded (all i64 edges,
  INT8/16/32 in the file and 64-bit ones as digits), integer-looking strings that stay strings
  (`007`, `+1`, `-0`, `" 1"`, 2^63 ...), embstr, raw (up to 20000 bytes: a 32-bit length), LZF
  (21 B to 20 KB), random binary, control bytes, UTF-8, the empty key name (db 0 and 3), integer key
  names (stored as INT8/16/32), a 300-byte key. Lists (all `quicklist` in 7.0): one-node listpacks with
  every listpack int width and the 6/12/32-bit string lengths, multi-node quicklists
  (`list-max-listpack-size 8` / default), inner nodes LZF-compressed in memory
  (`list-compress-depth 1`), PLAIN nodes (`DEBUG QUICKLIST-PACKED-THRESHOLD 1k`), PLAIN nodes that
  are also compressed. Sets: intset 16/32/64-bit (and `set:intset:grown`, 64-bit wide with small
  members), 512-member intset, hashtables (strings, 513 ints, binary, long members); Redis 7.0 has no
  listpack sets. Zsets: listpack (-0.0 stored as int 0 there; 128 members) and skiplist (> 128
  members, long member, binary) with scores 0, -0.0, 1.5, -2.25, 1e-300, 5e-324, max double, inf,
  -inf, 1.2345678901234568e17. Hashes: listpack (512 fields; `hash:lp:bigvals` holds 4095/4096-byte
  values: made with `hash-max-listpack-value 5000`), hashtable (513 fields, a 100-byte value, binary).
  Streams: `stream:big` (10 entries a node, XDEL, XTRIM MAXLEN, a group with 30 pending),
  `stream:groups` (2 groups, XCLAIM, XACK, `ENTRIESREAD`, a consumer without PEL), first entry
  deleted, emptied, `XGROUP CREATE ... MKSTREAM`, binary fields, `XTRIM MINID`, `XSETID ...
  ENTRIESADDED MAXDELETEDID`, integer values of every width.
* `small-db0.rdb`: {small_keys} keys of every type in db 0, one small function library, one TTL: small on
  purpose (< 2 KB) for exhaustive truncation / byte-flip tests.
* `no-checksum.rdb`: a small mix saved with `--rdbchecksum no`: the stored CRC-64 is 0.
* `uncompressed.rdb`: the same data as `no-checksum.rdb` (same seed) saved with
  `--rdbcompression no`: no LZF string anywhere; its CRC is real. (Redis 7.0 still writes LZF
  for quicklist nodes that are compressed in memory, `list-compress-depth` > 0, even with
  `rdbcompression no`; this file keeps the default depth 0 so it has none.)
* `empty.rdb`: `SAVE` of an empty server (header, AUX fields, EOF, CRC).
* `preamble-aof/`: the `appendonlydir` of a run with `--appendonly yes --aof-use-rdb-preamble yes
  --aof-timestamp-enabled yes`: the small-db0 data, two `BGREWRITEAOF`s (so the base
  `appendonly.aof.3.base.rdb` is an RDB and the seq-2 files went to history and were collected),
  then more commands in `appendonly.aof.3.incr.aof`, spread
  over > 2 s so that several `#TS:` lines appear (SET, INCRBY, EXPIRE logged as PEXPIREAT, SET PX
  logged as PXAT, MULTI/EXEC, SELECT 2, DEL, FUNCTION LOAD, FCALL logged as the INCRBY it ran).
  `expected/preamble-aof.json` is the state at the end of the run.

## expected/NAME.json

The layout of `../shared/fixtures/generated/*/expected.json` (see its README): `server`
(`redis_version`, `dump_time_ms` = the server's TIME right after SAVE, plus `server_name`, `version`,
`rdb_header`, `fixture`, `seed`), `functions` (FUNCTION LIST WITHCODE, libraries and functions sorted
by name), `dbs` with one entry per line sorted by key bytes: `key`, `type`, `pttl` (relative to
`dump_time_ms`), `expire_at_ms` (PEXPIRETIME, -1 = none), `value`, `stream_info` for streams, and
`encoding` (OBJECT ENCODING, extra information). Byte strings are JSON strings when valid UTF-8, else
`{{"b64": ...}}`. Two differences from the 7.2+ fixtures come from Redis 7.0 itself: `XINFO STREAM FULL`
has no consumer `active-time` (7.0 keeps only `seen-time`; RDB 10 streams are type 19, without
`active_time`), and every list is `quicklist`.

## Encodings (OBJECT ENCODING in the writing server)

{encodings}
"""


def write_readme(args, docs):
    rows, encodings = [], []
    for name, doc in docs.items():
        path = args.out / name
        size = (sum(p.stat().st_size for p in path.iterdir()) if path.is_dir()
                else path.stat().st_size)
        per_db = " ".join(f"db{db}:{len(es)}" for db, es in doc["dbs"].items()) or "-"
        rows.append(f"| `{name}{'/' if path.is_dir() else ''}` | {size} | {per_db} | "
                    f"`expected/{name}.json` |")
        encodings.append(f"* `{name}`: {encoding_summary(doc)}")
    main_doc = docs["all-types.rdb"]
    entries = [e for es in main_doc["dbs"].values() for e in es]
    text = README_HEAD.format(
        version=main_doc["server"]["redis_version"], seed=args.seed, rows="\n".join(rows),
        ttl=sum(e["expire_at_ms"] != -1 for e in entries), keys=len(entries),
        small_keys=sum(map(len, docs["small-db0.rdb"]["dbs"].values())),
        encodings="\n".join(encodings))
    (args.out / "README.md").write_text(text, encoding="utf-8")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path,
                    default=Path(__file__).resolve().parent.parent / "testdata")
    ap.add_argument("--seed", type=int, default=7)
    ap.add_argument("--redis-server", default="redis-server")
    args = ap.parse_args()
    if shutil.which(args.redis_server) is None:
        sys.exit(f"{args.redis_server} not found (apt-get install redis-server)")
    args.out.mkdir(parents=True, exist_ok=True)

    docs = {
        "all-types.rdb": save_rdb(args, "all-types.rdb", dataset_all_types),
        "small-db0.rdb": save_rdb(args, "small-db0.rdb", dataset_small),
        "no-checksum.rdb": save_rdb(args, "no-checksum.rdb", dataset_plain_mix,
                                    ["--rdbchecksum", "no"], "plain-mix"),
        "uncompressed.rdb": save_rdb(args, "uncompressed.rdb", dataset_plain_mix,
                                     ["--rdbcompression", "no"], "plain-mix"),
        "empty.rdb": save_rdb(args, "empty.rdb", lambda c, rng: None),
        "preamble-aof": make_preamble_aof(args),
    }
    for name, doc in docs.items():
        path = args.out / name
        for db, key, was, now in load_check(args, path, doc):
            print(f"note: {name} db{db} {key!r}: {was} in the writer, {now} after loading")
        size = (sum(p.stat().st_size for p in path.iterdir()) if path.is_dir()
                else path.stat().st_size)
        print(f"{name}: {size} bytes; {encoding_summary(doc)}")
    write_readme(args, docs)


if __name__ == "__main__":
    main()
