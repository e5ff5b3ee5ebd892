#!/usr/bin/env python3
"""Drives sealcache with redis-py over TLS + RESP3 and checks every round trip.

Usage (run by tests/it/clients.rs; scripts/test.sh installs redis-py):

    redis_py_client.py --host 127.0.0.1 --port PORT --ca CA.crt --prefix py: \
        --marker TEXT            # password in $REDIS_PASSWORD

Connects as user `default` with `protocol=3` (redis-py opens with
`HELLO 3 AUTH default …`), verifying the proxy's certificate against the
custom CA. Exercises strings, hashes, lists, sets, sorted sets, a pipeline,
a MULTI/EXEC transaction and Pub/Sub, then leaves `--marker` under
`<prefix>proof:*` (one key per data type) for the caller to look for in the
raw upstream. Exits 1 with `FAIL: …` on the first mismatch; prints one
summary line starting with `sealcache-clients: redis-py` on success.
"""

import argparse
import os
import signal
import sys
import time

try:
    import redis
except ImportError as err:  # the Rust test checks this first; keep the hint anyway
    sys.exit(f"FAIL: redis-py is not installed ({err}): run scripts/test.sh")

# Values with the edge cases a codec or a cipher could get wrong.
UNICODE = "héllo wörld — 日本語 🚀 ∑ ǅ"
EMPTY = ""
BINARY = bytes(range(256))
LARGE = ("0123456789abcdef" * 8192).encode()  # 128 KiB
PIPELINE_COMMANDS = 200
DEADLINE_SECONDS = 60


class Checks:
    """Counts passed checks; the first failure ends the run."""

    def __init__(self):
        self.passed = 0
        self.groups = []

    def eq(self, what, got, expected):
        if got != expected:
            fail(f"{what}: expected {expected!r}, got {got!r}")
        self.passed += 1

    def true(self, what, condition):
        if not condition:
            fail(what)
        self.passed += 1


def fail(message):
    print(f"FAIL: redis-py: {message}", file=sys.stderr, flush=True)
    sys.exit(1)


def b(text):
    return text.encode()


def pairs(reply):
    """[[field, value], …] (RESP3) or [field, value, …] (RESP2) → dict."""
    if reply and isinstance(reply[0], list):
        return dict(reply)
    return dict(zip(reply[0::2], reply[1::2]))


def parse_args():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--ca", required=True, help="CA certificate (PEM) to verify the proxy")
    parser.add_argument("--user", default="default")
    parser.add_argument("--prefix", default="py:")
    parser.add_argument("--marker", default="sealcache-marker-" + UNICODE)
    args = parser.parse_args()
    args.password = os.environ.get("REDIS_PASSWORD")
    if not args.password:
        parser.error("set REDIS_PASSWORD")
    return args


def connect(args):
    return redis.Redis(
        host=args.host,
        port=args.port,
        username=args.user,
        password=args.password,
        protocol=3,
        ssl=True,
        ssl_ca_certs=args.ca,
        ssl_cert_reqs="required",
        ssl_check_hostname=True,
        socket_timeout=10,
        socket_connect_timeout=10,
        decode_responses=False,
    )


def strings(r, k, c):
    for name, value in [("unicode", b(UNICODE)), ("empty", b""), ("binary", BINARY), ("large", LARGE)]:
        c.eq(f"SET {name}", r.set(k + "s:" + name, value), True)
        c.eq(f"GET {name}", r.get(k + "s:" + name), value)
    c.eq("GET missing", r.get(k + "s:missing"), None)
    c.eq("SET NX on existing", r.set(k + "s:unicode", b"x", nx=True), None)
    c.eq("SET GET", r.set(k + "s:unicode", b"next", get=True), b(UNICODE))
    c.eq("SET EX", r.set(k + "s:ttl", b(UNICODE), ex=100), True)
    c.true("TTL after SET EX", 0 < r.ttl(k + "s:ttl") <= 100)
    c.eq("GETEX", r.getex(k + "s:ttl", persist=True), b(UNICODE))
    c.eq("TTL after GETEX PERSIST", r.ttl(k + "s:ttl"), -1)
    c.eq("MSET", r.mset({k + "s:m1": b(UNICODE), k + "s:m2": b"", k + "s:m3": BINARY}), True)
    c.eq("MGET", r.mget([k + "s:m1", k + "s:m2", k + "s:missing", k + "s:m3"]), [b(UNICODE), b"", None, BINARY])
    c.eq("SETNX", r.setnx(k + "s:nx", b"first"), True)
    c.eq("SETNX again", r.setnx(k + "s:nx", b"second"), False)
    c.eq("GETSET", r.getset(k + "s:nx", b(UNICODE)), b"first")
    c.eq("GETDEL", r.getdel(k + "s:nx"), b(UNICODE))
    c.eq("EXISTS after GETDEL", r.exists(k + "s:nx"), 0)
    # Emulated outside MULTI: the counter is stored encrypted too.
    c.eq("INCR", r.incr(k + "s:counter"), 1)
    c.eq("INCRBY", r.incrby(k + "s:counter", 41), 42)
    c.eq("GET counter", r.get(k + "s:counter"), b"42")
    c.eq("APPEND", r.append(k + "s:appended", b(UNICODE)), len(b(UNICODE)))
    c.eq("STRLEN", r.strlen(k + "s:appended"), len(b(UNICODE)))
    c.groups.append("strings")


def hashes(r, k, c):
    h = k + "h"
    mapping = {b"uni": b(UNICODE), b"empty": b"", b"bin": BINARY, "ключ".encode(): b"value"}
    c.eq("HSET mapping", r.hset(h, mapping=mapping), 4)
    c.eq("HGET", r.hget(h, "uni"), b(UNICODE))
    c.eq("HGET empty", r.hget(h, "empty"), b"")
    c.eq("HGET unicode field", r.hget(h, "ключ"), b"value")
    c.eq("HMGET", r.hmget(h, ["bin", "missing", "uni"]), [BINARY, None, b(UNICODE)])
    c.eq("HGETALL", r.hgetall(h), mapping)
    c.eq("HVALS", sorted(r.hvals(h)), sorted(mapping.values()))
    c.eq("HKEYS", sorted(r.hkeys(h)), sorted(mapping.keys()))
    c.eq("HLEN", r.hlen(h), 4)
    c.eq("HEXISTS", r.hexists(h, "uni"), True)
    c.eq("HSETNX existing", r.hsetnx(h, "uni", b"other"), False)
    c.eq("HSETNX new", r.hsetnx(h, "new", b"n"), True)
    c.eq("HDEL", r.hdel(h, "new"), 1)
    c.eq("HRANDFIELD WITHVALUES", pairs(r.hrandfield(h, 4, withvalues=True)), mapping)
    cursor, scanned = r.hscan(h, 0, count=100)
    c.eq("HSCAN", (cursor, scanned), (0, mapping))
    c.eq("HINCRBY", r.hincrby(h, "n", 5), 5)
    c.groups.append("hashes")


def lists(r, k, c):
    key = k + "l"
    c.eq("RPUSH", r.rpush(key, b(UNICODE), b"", BINARY), 3)
    c.eq("LPUSH", r.lpush(key, b"head"), 4)
    c.eq("LRANGE", r.lrange(key, 0, -1), [b"head", b(UNICODE), b"", BINARY])
    c.eq("LINDEX", r.lindex(key, 1), b(UNICODE))
    c.eq("LLEN", r.llen(key), 4)
    c.eq("LSET", r.lset(key, 0, "ħead".encode()), True)
    c.eq("LPOP", r.lpop(key), "ħead".encode())
    c.eq("RPOP count", r.rpop(key, 2), [BINARY, b""])
    c.eq("LMOVE", r.lmove(key, k + "l2", "LEFT", "RIGHT"), b(UNICODE))
    c.eq("BLPOP", r.blpop([k + "l2"], timeout=1), [b(k + "l2"), b(UNICODE)])
    c.eq("BLPOP timeout", r.blpop([k + "l2"], timeout=0.1), None)
    c.groups.append("lists")


def sets(r, k, c):
    a, bb = k + "set:a", k + "set:b"
    c.eq("SADD", r.sadd(a, b(UNICODE), b"", BINARY, b"common"), 4)
    c.eq("SADD duplicate", r.sadd(a, b(UNICODE)), 0)
    c.eq("SADD b", r.sadd(bb, b"common", b"only-b"), 2)
    c.eq("SMEMBERS", r.smembers(a), {b(UNICODE), b"", BINARY, b"common"})
    c.eq("SISMEMBER", r.sismember(a, b(UNICODE)), True)
    c.eq("SISMEMBER missing", r.sismember(a, b"nope"), False)
    c.eq("SMISMEMBER", r.smismember(a, [b"", b"nope", BINARY]), [True, False, True])
    c.eq("SCARD", r.scard(a), 4)
    c.eq("SINTER", r.sinter(a, bb), {b"common"})
    c.eq("SUNION", r.sunion(a, bb), {b(UNICODE), b"", BINARY, b"common", b"only-b"})
    c.eq("SDIFF", r.sdiff(a, bb), {b(UNICODE), b"", BINARY})
    c.eq("SINTERSTORE", r.sinterstore(k + "set:inter", [a, bb]), 1)
    c.eq("SMEMBERS stored", r.smembers(k + "set:inter"), {b"common"})
    c.eq("SMOVE", r.smove(bb, a, b"only-b"), True)
    c.eq("SREM", r.srem(a, b"only-b", b""), 2)
    c.true("SRANDMEMBER", r.srandmember(a) in {b(UNICODE), BINARY, b"common"})
    c.groups.append("sets")


def sorted_sets(r, k, c):
    z = k + "z"
    c.eq("ZADD", r.zadd(z, {b(UNICODE): 1.5, b"": 0, BINARY: 3, b"low": -2}), 4)
    c.eq("ZRANGE", r.zrange(z, 0, -1), [b"low", b"", b(UNICODE), BINARY])
    c.eq(
        "ZRANGE WITHSCORES",
        r.zrange(z, 0, -1, withscores=True),
        [[b"low", -2.0], [b"", 0.0], [b(UNICODE), 1.5], [BINARY, 3.0]],
    )
    c.eq("ZSCORE", r.zscore(z, b(UNICODE)), 1.5)
    c.eq("ZMSCORE", r.zmscore(z, [b"", b"nope"]), [0.0, None])
    c.eq("ZRANK", r.zrank(z, BINARY), 3)
    c.eq("ZREVRANGE", r.zrevrange(z, 0, 0), [BINARY])
    c.eq("ZRANGEBYSCORE", r.zrangebyscore(z, 0, 2), [b"", b(UNICODE)])
    c.eq("ZINCRBY", r.zincrby(z, 10, b"low"), 8.0)
    c.eq("ZREM", r.zrem(z, b""), 1)
    c.eq("ZCARD", r.zcard(z), 3)
    c.eq("ZPOPMIN", r.zpopmin(z), [b(UNICODE), 1.5])
    c.groups.append("sorted sets")


def pipeline(r, k, c):
    pipe = r.pipeline(transaction=False)
    expected = []
    for i in range(PIPELINE_COMMANDS // 4):
        value = f"{UNICODE} #{i}".encode()
        pipe.set(f"{k}p:{i}", value)
        expected.append(True)
        pipe.get(f"{k}p:{i}")
        expected.append(value)
        pipe.hset(k + "p:h", f"f{i}", value)
        expected.append(1)
        pipe.rpush(k + "p:l", value)
        expected.append(i + 1)
    replies = pipe.execute()
    c.eq("pipeline reply count", len(replies), PIPELINE_COMMANDS)
    for i, (got, want) in enumerate(zip(replies, expected)):
        c.eq(f"pipeline reply {i}", got, want)
    c.eq("pipeline list after", len(r.lrange(k + "p:l", 0, -1)), PIPELINE_COMMANDS // 4)
    c.groups.append(f"pipeline({PIPELINE_COMMANDS})")


def transaction(r, k, c):
    pipe = r.pipeline(transaction=True)
    pipe.set(k + "tx:s", b(UNICODE))
    pipe.get(k + "tx:s")
    pipe.hset(k + "tx:h", "f", b"")
    pipe.hgetall(k + "tx:h")
    pipe.rpush(k + "tx:l", BINARY, b(UNICODE))
    pipe.lrange(k + "tx:l", 0, -1)
    pipe.sadd(k + "tx:set", b(UNICODE))
    pipe.smembers(k + "tx:set")
    pipe.zadd(k + "tx:z", {b(UNICODE): 2})
    pipe.zrange(k + "tx:z", 0, -1, withscores=True)
    replies = pipe.execute()
    c.eq(
        "MULTI/EXEC replies",
        replies,
        [True, b(UNICODE), 1, {b"f": b""}, 2, [BINARY, b(UNICODE)], 1, {b(UNICODE)}, 1, [[b(UNICODE), 2.0]]],
    )

    # Check-and-set with WATCH, as redis-py's transaction helper does it.
    r.set(k + "tx:cas", b"v1")

    def cas(p):
        current = p.get(k + "tx:cas")
        p.multi()
        p.set(k + "tx:cas", current + " → v2".encode())

    c.eq("WATCH/MULTI/EXEC", r.transaction(cas, k + "tx:cas"), [True])
    c.eq("GET after WATCH transaction", r.get(k + "tx:cas"), "v1 → v2".encode())
    c.groups.append("transaction")


def pubsub(args, r, k, c):
    sub = connect(args)
    ps = sub.pubsub()
    channel = k + "chan:ünï"
    ps.subscribe(channel)
    confirm = ps.get_message(timeout=5)
    c.eq("SUBSCRIBE confirmation", confirm and (confirm["type"], confirm["channel"]), ("subscribe", b(channel)))
    ps.psubscribe(k + "pat:*")
    confirm = ps.get_message(timeout=5)
    c.eq("PSUBSCRIBE confirmation", confirm and confirm["type"], "psubscribe")

    payloads = [b(UNICODE), b"", BINARY, LARGE]
    for payload in payloads:
        c.eq("PUBLISH receivers", r.publish(channel, payload), 1)
    for i, payload in enumerate(payloads):
        message = next_message(ps)
        c.eq(f"message {i} channel", message["channel"], b(channel))
        c.eq(f"message {i} payload", message["data"], payload)
    c.eq("PUBLISH pattern receivers", r.publish(k + "pat:x", b(UNICODE)), 1)
    message = next_message(ps)
    c.eq("pmessage", (message["type"], message["pattern"], message["channel"], message["data"]),
         ("pmessage", b(k + "pat:*"), b(k + "pat:x"), b(UNICODE)))
    ps.unsubscribe()
    ps.punsubscribe()
    ps.close()

    # Sharded Pub/Sub (SSUBSCRIBE/SPUBLISH), Redis 7.
    shard = sub.pubsub()
    shard.ssubscribe(k + "shard:ü")
    confirm = shard.get_sharded_message(timeout=5)
    c.eq("SSUBSCRIBE confirmation", confirm and confirm["type"], "ssubscribe")
    c.eq("SPUBLISH receivers", r.spublish(k + "shard:ü", b(UNICODE)), 1)
    message = shard.get_sharded_message(ignore_subscribe_messages=True, timeout=5)
    c.eq("smessage", message and (message["type"], message["channel"], message["data"]),
         ("smessage", b(k + "shard:ü"), b(UNICODE)))
    shard.sunsubscribe()
    shard.close()
    sub.close()
    c.groups.append("pubsub")


def next_message(ps):
    end = time.monotonic() + 10
    while time.monotonic() < end:
        message = ps.get_message(ignore_subscribe_messages=True, timeout=1)
        if message is not None:
            return message
    fail("no Pub/Sub message within 10 s")


def proof(r, k, marker):
    """One value per data type for the caller to look for in the raw upstream."""
    value = b(marker)
    r.set(k + "proof:string", value)
    r.hset(k + "proof:hash", "field", value)
    r.rpush(k + "proof:list", value)
    r.sadd(k + "proof:set", value)
    r.zadd(k + "proof:zset", {value: 1})


def main():
    args = parse_args()
    signal.signal(signal.SIGALRM, lambda *_: fail(f"did not finish within {DEADLINE_SECONDS} s"))
    signal.alarm(DEADLINE_SECONDS)

    r = connect(args)
    c = Checks()
    k = args.prefix
    try:
        c.eq("PING", r.ping(), True)
        hello = r.execute_command("HELLO", "3")
        c.eq("HELLO proto", hello.get(b"proto"), 3)
        strings(r, k, c)
        hashes(r, k, c)
        lists(r, k, c)
        sets(r, k, c)
        sorted_sets(r, k, c)
        pipeline(r, k, c)
        transaction(r, k, c)
        pubsub(args, r, k, c)
        proof(r, k, args.marker)
    except redis.RedisError as err:
        fail(f"{type(err).__name__}: {err}")
    r.close()
    print(
        f"sealcache-clients: redis-py {redis.__version__} RESP3 TLS: "
        f"{c.passed} checks passed ({', '.join(c.groups)})",
        flush=True,
    )


if __name__ == "__main__":
    main()
