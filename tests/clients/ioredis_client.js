#!/usr/bin/env node
// Drives sealcache with ioredis over TLS + RESP3 and checks every round trip.
//
// Usage (run by tests/it/clients.rs; scripts/test.sh installs ioredis):
//
//   node ioredis_client.js --host 127.0.0.1 --port PORT --ca CA.crt --prefix js: \
//       --marker TEXT            # password in $REDIS_PASSWORD
//
// Connects as user `default` with ioredis's defaults (it opens with
// `HELLO 3 AUTH default …`, then CLIENT SETINFO, then INFO for its ready
// check), verifying the proxy's certificate against the custom CA. Exercises
// strings, hashes, lists, sets, sorted sets, a pipeline, a MULTI/EXEC
// transaction and Pub/Sub, then leaves --marker under `<prefix>proof:*` (one
// key per data type) for the caller to look for in the raw upstream. Exits 1
// with `FAIL: …` on the first mismatch; prints one summary line starting with
// `sealcache-clients: ioredis` on success.
"use strict";

const assert = require("node:assert");
const fs = require("node:fs");
const { parseArgs } = require("node:util");

let Redis;
try {
  Redis = require("ioredis");
} catch (err) {
  fail(`ioredis is not installed (${err.message}): run scripts/test.sh`);
}
const IOREDIS_VERSION = require("ioredis/package.json").version;

// Values with the edge cases a codec or a cipher could get wrong.
const UNICODE = "héllo wörld — 日本語 🚀 ∑ ǅ";
const U = Buffer.from(UNICODE, "utf8");
const EMPTY = Buffer.alloc(0);
const BINARY = Buffer.from(Array.from({ length: 256 }, (_, i) => i));
const LARGE = Buffer.from("0123456789abcdef".repeat(8192)); // 128 KiB
const PIPELINE_COMMANDS = 200;
const DEADLINE_MS = 60_000;

function fail(message) {
  process.stderr.write(`FAIL: ioredis: ${message}\n`);
  process.exit(1);
}

let passed = 0;
let lastCheck = "none";
const groups = [];

function eq(what, got, expected) {
  try {
    assert.deepStrictEqual(got, expected);
  } catch {
    fail(`${what}: expected ${show(expected)}, got ${show(got)}`);
  }
  passed += 1;
  lastCheck = what;
}

function ok(what, condition) {
  if (!condition) fail(what);
  passed += 1;
  lastCheck = what;
}

function show(value) {
  if (Buffer.isBuffer(value)) {
    return value.length > 64 ? `<Buffer ${value.length} bytes>` : `<Buffer ${value.toString("hex")}>`;
  }
  if (Array.isArray(value)) return `[${value.map(show).join(", ")}]`;
  return JSON.stringify(value);
}

const b = (text) => Buffer.from(text, "utf8");
const sorted = (buffers) => [...buffers].sort(Buffer.compare);

function options() {
  const { values } = parseArgs({
    options: {
      host: { type: "string", default: "127.0.0.1" },
      port: { type: "string" },
      ca: { type: "string" },
      user: { type: "string", default: "default" },
      prefix: { type: "string", default: "js:" },
      marker: { type: "string", default: `sealcache-marker-${UNICODE}` },
    },
  });
  if (!values.port || !values.ca) fail("usage: --port PORT --ca CA.crt [--host H] [--prefix P] [--marker M]");
  const password = process.env.REDIS_PASSWORD;
  if (!password) fail("set REDIS_PASSWORD");
  return { ...values, port: Number(values.port), password };
}

function connect(opts) {
  const redis = new Redis({
    host: opts.host,
    port: opts.port,
    username: opts.user,
    password: opts.password,
    tls: { ca: fs.readFileSync(opts.ca), rejectUnauthorized: true },
    lazyConnect: true,
    connectTimeout: 10_000,
    commandTimeout: 15_000,
    maxRetriesPerRequest: 0,
    retryStrategy: () => null, // a dropped connection is a failure, not a retry
  });
  // Surface connection-level errors (TLS, handshake, ready check) as failures.
  redis.on("error", (err) => fail(`connection error: ${err.message}`));
  return redis;
}

async function strings(r, k) {
  for (const [name, value] of [["unicode", U], ["empty", EMPTY], ["binary", BINARY], ["large", LARGE]]) {
    eq(`SET ${name}`, await r.set(`${k}s:${name}`, value), "OK");
    eq(`GET ${name}`, await r.getBuffer(`${k}s:${name}`), value);
  }
  eq("GET as string", await r.get(`${k}s:unicode`), UNICODE);
  eq("GET missing", await r.getBuffer(`${k}s:missing`), null);
  eq("SET NX on existing", await r.set(`${k}s:unicode`, "x", "NX"), null);
  eq("SET GET", await r.setBuffer(`${k}s:unicode`, "next", "GET"), U);
  eq("SET EX", await r.set(`${k}s:ttl`, U, "EX", 100), "OK");
  const ttl = await r.ttl(`${k}s:ttl`);
  ok(`TTL after SET EX is ${ttl}`, ttl > 0 && ttl <= 100);
  eq("GETEX", await r.getexBuffer(`${k}s:ttl`, "PERSIST"), U);
  eq("TTL after GETEX PERSIST", await r.ttl(`${k}s:ttl`), -1);
  eq("MSET", await r.mset(`${k}s:m1`, U, `${k}s:m2`, EMPTY, `${k}s:m3`, BINARY), "OK");
  eq("MGET", await r.mgetBuffer(`${k}s:m1`, `${k}s:m2`, `${k}s:missing`, `${k}s:m3`), [U, EMPTY, null, BINARY]);
  eq("SETNX", await r.setnx(`${k}s:nx`, "first"), 1);
  eq("SETNX again", await r.setnx(`${k}s:nx`, "second"), 0);
  eq("GETSET", await r.getsetBuffer(`${k}s:nx`, U), b("first"));
  eq("GETDEL", await r.getdelBuffer(`${k}s:nx`), U);
  eq("EXISTS after GETDEL", await r.exists(`${k}s:nx`), 0);
  // Emulated outside MULTI: the counter is stored encrypted too.
  eq("INCR", await r.incr(`${k}s:counter`), 1);
  eq("INCRBY", await r.incrby(`${k}s:counter`, 41), 42);
  eq("GET counter", await r.get(`${k}s:counter`), "42");
  eq("APPEND", await r.append(`${k}s:appended`, U), U.length);
  eq("STRLEN", await r.strlen(`${k}s:appended`), U.length);
  groups.push("strings");
}

async function hashes(r, k) {
  const h = `${k}h`;
  const fields = { uni: U, empty: EMPTY, bin: BINARY, "ключ": b("value") };
  eq("HSET", await r.hset(h, fields), 4);
  eq("HGET", await r.hgetBuffer(h, "uni"), U);
  eq("HGET empty", await r.hgetBuffer(h, "empty"), EMPTY);
  eq("HGET unicode field", await r.hget(h, "ключ"), "value");
  eq("HMGET", await r.hmgetBuffer(h, "bin", "missing", "uni"), [BINARY, null, U]);
  eq("HGETALL", { ...(await r.hgetallBuffer(h)) }, fields);
  eq("HGETALL as strings", (await r.hgetall(h))["ключ"], "value");
  eq("HVALS", sorted(await r.hvalsBuffer(h)), sorted(Object.values(fields)));
  eq("HKEYS", (await r.hkeys(h)).sort(), Object.keys(fields).sort());
  eq("HLEN", await r.hlen(h), 4);
  eq("HEXISTS", await r.hexists(h, "uni"), 1);
  eq("HSETNX existing", await r.hsetnx(h, "uni", "other"), 0);
  eq("HSETNX new", await r.hsetnx(h, "new", "n"), 1);
  eq("HDEL", await r.hdel(h, "new"), 1);
  eq("HRANDFIELD WITHVALUES", pairsToObject(await r.hrandfieldBuffer(h, 4, "WITHVALUES")), fields);
  const [cursor, scanned] = await r.hscanBuffer(h, 0, "COUNT", 100);
  eq("HSCAN cursor", cursor.toString(), "0");
  eq("HSCAN", pairsToObject(scanned), fields);
  eq("HINCRBY", await r.hincrby(h, "n", 5), 5);
  groups.push("hashes");
}

// [field, value, field, value] (or [[field, value], …]) → { field: value }.
function pairsToObject(reply) {
  const flat = reply.flat();
  const object = {};
  for (let i = 0; i < flat.length; i += 2) object[flat[i].toString()] = flat[i + 1];
  return object;
}

async function lists(r, k) {
  const key = `${k}l`;
  eq("RPUSH", await r.rpush(key, U, EMPTY, BINARY), 3);
  eq("LPUSH", await r.lpush(key, "head"), 4);
  eq("LRANGE", await r.lrangeBuffer(key, 0, -1), [b("head"), U, EMPTY, BINARY]);
  eq("LINDEX", await r.lindexBuffer(key, 1), U);
  eq("LLEN", await r.llen(key), 4);
  eq("LSET", await r.lset(key, 0, "ħead"), "OK");
  eq("LPOP", await r.lpop(key), "ħead");
  eq("RPOP count", await r.rpopBuffer(key, 2), [BINARY, EMPTY]);
  eq("LMOVE", await r.lmoveBuffer(key, `${k}l2`, "LEFT", "RIGHT"), U);
  eq("BLPOP", await r.blpopBuffer(`${k}l2`, 1), [b(`${k}l2`), U]);
  eq("BLPOP timeout", await r.blpopBuffer(`${k}l2`, 0.1), null);
  groups.push("lists");
}

async function sets(r, k) {
  const a = `${k}set:a`;
  const bb = `${k}set:b`;
  const common = b("common");
  eq("SADD", await r.sadd(a, U, EMPTY, BINARY, common), 4);
  eq("SADD duplicate", await r.sadd(a, U), 0);
  eq("SADD b", await r.sadd(bb, common, "only-b"), 2);
  eq("SMEMBERS", sorted(await r.smembersBuffer(a)), sorted([U, EMPTY, BINARY, common]));
  eq("SISMEMBER", await r.sismember(a, U), 1);
  eq("SISMEMBER missing", await r.sismember(a, "nope"), 0);
  eq("SMISMEMBER", await r.smismember(a, EMPTY, "nope", BINARY), [1, 0, 1]);
  eq("SCARD", await r.scard(a), 4);
  eq("SINTER", await r.sinterBuffer(a, bb), [common]);
  eq("SUNION", sorted(await r.sunionBuffer(a, bb)), sorted([U, EMPTY, BINARY, common, b("only-b")]));
  eq("SDIFF", sorted(await r.sdiffBuffer(a, bb)), sorted([U, EMPTY, BINARY]));
  eq("SINTERSTORE", await r.sinterstore(`${k}set:inter`, a, bb), 1);
  eq("SMEMBERS stored", await r.smembersBuffer(`${k}set:inter`), [common]);
  eq("SMOVE", await r.smove(bb, a, "only-b"), 1);
  eq("SREM", await r.srem(a, "only-b", EMPTY), 2);
  const random = await r.srandmemberBuffer(a);
  ok(`SRANDMEMBER returned ${show(random)}`, [U, BINARY, common].some((m) => m.equals(random)));
  groups.push("sets");
}

async function sortedSets(r, k) {
  const z = `${k}z`;
  eq("ZADD", await r.zadd(z, 1.5, U, 0, EMPTY, 3, BINARY, -2, "low"), 4);
  eq("ZRANGE", await r.zrangeBuffer(z, 0, -1), [b("low"), EMPTY, U, BINARY]);
  eq(
    "ZRANGE WITHSCORES",
    withScores(await r.zrangeBuffer(z, 0, -1, "WITHSCORES")),
    [[b("low"), -2], [EMPTY, 0], [U, 1.5], [BINARY, 3]],
  );
  eq("ZSCORE", Number(await r.zscore(z, U)), 1.5);
  eq("ZMSCORE", (await r.zmscore(z, EMPTY, "nope")).map((s) => (s === null ? null : Number(s))), [0, null]);
  eq("ZRANK", await r.zrank(z, BINARY), 3);
  eq("ZREVRANGE", await r.zrevrangeBuffer(z, 0, 0), [BINARY]);
  eq("ZRANGEBYSCORE", await r.zrangebyscoreBuffer(z, 0, 2), [EMPTY, U]);
  eq("ZINCRBY", Number(await r.zincrby(z, 10, "low")), 8);
  eq("ZREM", await r.zrem(z, EMPTY), 1);
  eq("ZCARD", await r.zcard(z), 3);
  eq("ZPOPMIN", withScores(await r.zpopminBuffer(z)), [[U, 1.5]]);
  groups.push("sorted sets");
}

// [member, score, …] or [[member, score], …] → [[member, Number(score)], …].
function withScores(reply) {
  const flat = reply.flat();
  const pairs = [];
  for (let i = 0; i < flat.length; i += 2) pairs.push([flat[i], Number(flat[i + 1].toString())]);
  return pairs;
}

async function pipeline(r, k) {
  const pipe = r.pipeline();
  const expected = [];
  for (let i = 0; i < PIPELINE_COMMANDS / 4; i++) {
    const value = b(`${UNICODE} #${i}`);
    pipe.set(`${k}p:${i}`, value);
    expected.push("OK");
    pipe.getBuffer(`${k}p:${i}`);
    expected.push(value);
    pipe.hset(`${k}p:h`, `f${i}`, value);
    expected.push(1);
    pipe.rpush(`${k}p:l`, value);
    expected.push(i + 1);
  }
  const replies = await pipe.exec();
  eq("pipeline reply count", replies.length, PIPELINE_COMMANDS);
  replies.forEach(([err, reply], i) => {
    eq(`pipeline reply ${i} error`, err, null);
    eq(`pipeline reply ${i}`, reply, expected[i]);
  });
  eq("pipeline list after", await r.llen(`${k}p:l`), PIPELINE_COMMANDS / 4);
  groups.push(`pipeline(${PIPELINE_COMMANDS})`);
}

async function transaction(r, k) {
  const replies = await r
    .multi()
    .set(`${k}tx:s`, U)
    .getBuffer(`${k}tx:s`)
    .hset(`${k}tx:h`, "f", EMPTY)
    .hgetallBuffer(`${k}tx:h`)
    .rpush(`${k}tx:l`, BINARY, U)
    .lrangeBuffer(`${k}tx:l`, 0, -1)
    .sadd(`${k}tx:set`, U)
    .smembersBuffer(`${k}tx:set`)
    .zadd(`${k}tx:z`, 2, U)
    .zrangeBuffer(`${k}tx:z`, 0, -1, "WITHSCORES")
    .exec();
  eq("MULTI/EXEC reply count", replies.length, 10);
  replies.forEach(([err], i) => eq(`MULTI/EXEC reply ${i} error`, err, null));
  const [set, get, hset, hgetall, rpush, lrange, sadd, smembers, zadd, zrange] = replies.map(([, v]) => v);
  eq("MULTI/EXEC SET", set, "OK");
  eq("MULTI/EXEC GET", get, U);
  eq("MULTI/EXEC HSET", hset, 1);
  eq("MULTI/EXEC HGETALL", { ...hgetall }, { f: EMPTY });
  eq("MULTI/EXEC RPUSH", rpush, 2);
  eq("MULTI/EXEC LRANGE", lrange, [BINARY, U]);
  eq("MULTI/EXEC SADD", sadd, 1);
  eq("MULTI/EXEC SMEMBERS", smembers, [U]);
  eq("MULTI/EXEC ZADD", zadd, 1);
  eq("MULTI/EXEC ZRANGE WITHSCORES", withScores(zrange), [[U, 2]]);

  // Check-and-set with WATCH.
  await r.set(`${k}tx:cas`, "v1");
  eq("WATCH", await r.watch(`${k}tx:cas`), "OK");
  const current = await r.get(`${k}tx:cas`);
  const cas = await r.multi().set(`${k}tx:cas`, `${current} → v2`).exec();
  eq("WATCH/MULTI/EXEC", cas, [[null, "OK"]]);
  eq("GET after WATCH transaction", await r.get(`${k}tx:cas`), "v1 → v2");
  groups.push("transaction");
}

async function pubsub(opts, r, k) {
  const sub = connect(opts);
  await sub.connect();
  const channel = `${k}chan:ünï`;
  const pattern = `${k}pat:*`;
  const messages = [];
  let wake = () => {};
  sub.on("messageBuffer", (ch, message) => {
    messages.push({ type: "message", channel: ch, data: message });
    wake();
  });
  sub.on("smessageBuffer", (ch, message) => {
    messages.push({ type: "smessage", channel: ch, data: message });
    wake();
  });
  sub.on("pmessageBuffer", (pat, ch, message) => {
    messages.push({ type: "pmessage", pattern: String(pat), channel: ch, data: message });
    wake();
  });
  const nextMessage = async () => {
    const end = Date.now() + 10_000;
    while (messages.length === 0) {
      if (Date.now() > end) fail("no Pub/Sub message within 10 s");
      await new Promise((resolve) => {
        wake = resolve;
        setTimeout(resolve, 200);
      });
    }
    return messages.shift();
  };

  eq("SUBSCRIBE", await sub.subscribe(channel), 1);
  eq("PSUBSCRIBE", await sub.psubscribe(pattern), 2);
  const payloads = [U, EMPTY, BINARY, LARGE];
  for (const payload of payloads) {
    eq("PUBLISH receivers", await r.publish(channel, payload), 1);
  }
  for (const [i, payload] of payloads.entries()) {
    const message = await nextMessage();
    eq(`message ${i} type`, message.type, "message");
    eq(`message ${i} channel`, message.channel, b(channel));
    eq(`message ${i} payload`, message.data, payload);
  }
  eq("PUBLISH pattern receivers", await r.publish(`${k}pat:x`, U), 1);
  eq("pmessage", await nextMessage(), { type: "pmessage", pattern, channel: b(`${k}pat:x`), data: U });
  // Unsubscribe by name: ioredis 6 waits forever for argument-less
  // UNSUBSCRIBE replies under RESP3, against redis-server too.
  eq("UNSUBSCRIBE", await sub.unsubscribe(channel), 1);
  eq("PUNSUBSCRIBE", await sub.punsubscribe(pattern), 0);

  // Sharded Pub/Sub (SSUBSCRIBE/SPUBLISH), Redis 7.
  const shard = `${k}shard:ü`;
  eq("SSUBSCRIBE", await sub.ssubscribe(shard), 1);
  eq("SPUBLISH receivers", await r.spublish(shard, U), 1);
  eq("smessage", await nextMessage(), { type: "smessage", channel: b(shard), data: U });
  eq("SUNSUBSCRIBE", await sub.sunsubscribe(shard), 0);
  sub.disconnect();
  groups.push("pubsub");
}

async function proof(r, k, marker) {
  const value = b(marker);
  await r.set(`${k}proof:string`, value);
  await r.hset(`${k}proof:hash`, "field", value);
  await r.rpush(`${k}proof:list`, value);
  await r.sadd(`${k}proof:set`, value);
  await r.zadd(`${k}proof:zset`, 1, value);
}

async function main() {
  const opts = options();
  setTimeout(() => fail(`did not finish within ${DEADLINE_MS / 1000} s`), DEADLINE_MS).unref();
  const r = connect(opts);
  await r.connect(); // HELLO 3 AUTH, CLIENT SETINFO, then the INFO ready check
  const k = opts.prefix;
  eq("PING", await r.ping(), "PONG");
  const hello = await r.hello("3");
  const proto = Array.isArray(hello) ? hello[hello.indexOf("proto") + 1] : hello.proto;
  eq("HELLO proto", proto, 3);
  await strings(r, k);
  await hashes(r, k);
  await lists(r, k);
  await sets(r, k);
  await sortedSets(r, k);
  await pipeline(r, k);
  await transaction(r, k);
  await pubsub(opts, r, k);
  await proof(r, k, opts.marker);
  await r.quit();
  console.log(
    `sealcache-clients: ioredis ${IOREDIS_VERSION} RESP3 TLS: ${passed} checks passed (${groups.join(", ")})`,
  );
}

main().catch((err) => fail(`${err.name}: ${err.message} (after check "${lastCheck}")\n${err.stack}`));
