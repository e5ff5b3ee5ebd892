#!/usr/bin/env python3
"""Regenerates what sealcache knows about Redis's commands from a live redis-server.

Usage: scripts/dev/gen_command_table.py (--port PORT | --socket PATH)

Run it against redis-server 7.0.15 (the version sealcache's COMMAND answers as):

    redis-server --port 0 --unixsocket /tmp/gen.sock --save '' --appendonly no &
    scripts/dev/gen_command_table.py --socket /tmp/gen.sock

It writes two files, both stable for a given server version (rerunning gives
the same bytes), so a diff shows only what the server changed:

- src/commands/table.rs, between `pub static COMMANDS` and its `];`: one row
  per command and subcommand, sorted by name. The name, arity, legacy key
  positions, movablekeys and key specifications come from the server; the key
  procedure (Redis's `getkeys_proc`, which COMMAND does not show) from
  GETKEYS_PROC below, copied from Redis 7.0's src/commands.c. The dispatch,
  policy and null-array columns are decisions: kept as the table has them.
  A command the table lacks gets a guessed dispatch and `Pass`, and a warning.
- src/commands/redis_commands.resp3: the server's RESP3 replies to
  `COMMAND INFO <every command>`, `COMMAND DOCS <every command>` and
  `COMMAND HELP`, commands sorted by name and each container's subcommands
  sorted too (Redis lists them in hash order, which changes from run to run).
  sealcache answers the COMMAND family from it (src/commands/introspect.rs).
"""
import argparse
import re
import socket
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "src/commands/table.rs"
CATALOG = ROOT / "src/commands/redis_commands.resp3"

# Redis 7.2+ commands real clients send to any server; COMMAND of 7.0 omits them.
EXTRA = {
    "CLIENT|SETINFO": (4, 0, 0, 0, False),
    "CLIENT|NO-TOUCH": (3, 0, 0, 0, False),
    "WAITAOF": (4, 0, 0, 0, False),
}

# Redis 7.0's getkeys_proc per command (src/commands.c). genericGetKeys
# (store key offset, numkeys offset, first key offset) covers most of them.
NUMKEYS = "KeysProc::NumKeys {{ store: {}, count: {}, first: {} }}"
GETKEYS_PROC = {
    "BITFIELD": "KeysProc::Bitfield",
    "BLMPOP": NUMKEYS.format(0, 2, 3),
    "BZMPOP": NUMKEYS.format(0, 2, 3),
    "EVAL": NUMKEYS.format(0, 2, 3),
    "EVALSHA": NUMKEYS.format(0, 2, 3),
    "EVALSHA_RO": NUMKEYS.format(0, 2, 3),
    "EVAL_RO": NUMKEYS.format(0, 2, 3),
    "FCALL": NUMKEYS.format(0, 2, 3),
    "FCALL_RO": NUMKEYS.format(0, 2, 3),
    "GEORADIUS": "KeysProc::GeoRadius",
    "GEORADIUSBYMEMBER": "KeysProc::GeoRadius",
    "LMPOP": NUMKEYS.format(0, 1, 2),
    "MIGRATE": "KeysProc::Migrate",
    "SET": "KeysProc::Set",
    "SINTERCARD": NUMKEYS.format(0, 1, 2),
    "SORT": "KeysProc::Sort",
    "SORT_RO": "KeysProc::SortRo",
    "XREAD": "KeysProc::XRead",
    "XREADGROUP": "KeysProc::XRead",
    "ZDIFF": NUMKEYS.format(0, 1, 2),
    "ZDIFFSTORE": NUMKEYS.format(1, 2, 3),
    "ZINTER": NUMKEYS.format(0, 1, 2),
    "ZINTERCARD": NUMKEYS.format(0, 1, 2),
    "ZINTERSTORE": NUMKEYS.format(1, 2, 3),
    "ZMPOP": NUMKEYS.format(0, 1, 2),
    "ZUNION": NUMKEYS.format(0, 1, 2),
    "ZUNIONSTORE": NUMKEYS.format(1, 2, 3),
}

# Guesses for commands the table does not have yet (review them).
LOCAL = {"AUTH", "HELLO", "PING", "ECHO", "QUIT", "RESET", "SELECT", "INFO", "COMMAND"}
TRANSACTION = {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"}
SUBSCRIBE = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}

DISPATCH = "Shared|Local|Transaction|Blocking|BlockingWithOption|Subscribe|Container"
ROW = re.compile(r'^\s*c!\("([^"]+)", .*?, (' + DISPATCH + r'), (.*), (true|false)\),\s*$')


# ---- RESP3 -------------------------------------------------------------------------------

class Node:
    """One RESP3 value: its type byte, header text, children and byte span."""

    def __init__(self, kind, head, children, start, end, payload=None):
        self.kind, self.head, self.children = kind, head, children
        self.start, self.end, self.payload = start, end, payload

    def text(self):
        return self.payload.decode() if self.kind == "$" else self.head

    def pairs(self):
        assert self.kind == "%", self.kind
        return list(zip(self.children[0::2], self.children[1::2]))

    def get(self, key):
        return next((v for k, v in self.pairs() if k.text() == key), None)


def parse(buf, pos=0):
    eol = buf.index(b"\r\n", pos)
    kind, head = chr(buf[pos]), buf[pos + 1:eol].decode()
    body = eol + 2
    if kind == "$":
        n = int(head)
        return Node(kind, head, [], pos, body + n + 2, buf[body:body + n])
    if kind in "*~%":
        count = int(head) * (2 if kind == "%" else 1)
        children = []
        for _ in range(count):
            child = parse(buf, body)
            children.append(child)
            body = child.end
        return Node(kind, head, children, pos, body)
    if kind in "+-:_":
        return Node(kind, head, [], pos, body)
    raise ValueError(f"unexpected RESP3 type {kind!r} in COMMAND output")


class Server:
    def __init__(self, args):
        if args.socket:
            self.sock = socket.socket(socket.AF_UNIX)
            self.sock.connect(args.socket)
        else:
            self.sock = socket.create_connection(("127.0.0.1", args.port))
        self.buf = b""
        self.call("HELLO", "3")

    def call(self, *words):
        out = b"*%d\r\n" % len(words)
        for w in words:
            w = w.encode()
            out += b"$%d\r\n%s\r\n" % (len(w), w)
        self.sock.sendall(out)
        while True:
            try:
                node = parse(self.buf)
            except (ValueError, IndexError):
                node = None
            if node is not None and node.end <= len(self.buf):
                raw, self.buf = self.buf[:node.end], self.buf[node.end:]
                if raw.startswith(b"-"):
                    sys.exit(f"{' '.join(words)}: {raw.decode().strip()}")
                return raw
            data = self.sock.recv(1 << 20)
            if not data:
                sys.exit("the server closed the connection")
            self.buf += data


def sorted_info(raw, entry):
    """A COMMAND INFO entry with its subcommands (element 9) sorted by name."""
    subs = entry.children[9]
    if subs.kind != "*":
        return raw[entry.start:entry.end]
    ordered = sorted(subs.children, key=lambda s: s.children[0].text())
    return (raw[entry.start:subs.start] + b"*%d\r\n" % len(ordered)
            + b"".join(raw[s.start:s.end] for s in ordered))


def sorted_docs(raw, doc):
    """A COMMAND DOCS map with its `subcommands` map sorted by name."""
    subs = doc.get("subcommands")
    if subs is None:
        return raw[doc.start:doc.end]
    ordered = sorted(subs.pairs(), key=lambda kv: kv[0].text())
    assert subs.end == doc.end, "subcommands is the last field"
    return (raw[doc.start:subs.start] + b"%%%d\r\n" % len(ordered)
            + b"".join(raw[k.start:k.end] + sorted_docs(raw, v) for k, v in ordered))


# ---- table rows ----------------------------------------------------------------------------

def key_spec(spec):
    flags = [f.text().upper() for f in spec.get("flags").children]
    begin, find = spec.get("begin_search"), spec.get("find_keys")
    bspec, fspec = begin.get("spec"), find.get("spec")
    num = lambda node, key: node.get(key).head  # noqa: E731
    kind = begin.get("type").text()
    if kind == "index":
        b = f"Index({num(bspec, 'index')})"
    elif kind == "keyword":
        b = f'Keyword("{bspec.get("keyword").text()}", {num(bspec, "startfrom")})'
    else:
        b = "BeginSearch::Unknown"
    kind = find.get("type").text()
    if kind == "range":
        f = f"Range({num(fspec, 'lastkey')}, {num(fspec, 'keystep')}, {num(fspec, 'limit')})"
    elif kind == "keynum":
        f = f"KeyNum({num(fspec, 'keynumidx')}, {num(fspec, 'firstkey')}, {num(fspec, 'keystep')})"
    else:
        f = "FindKeys::Unknown"
    return f"ks({' | '.join(flags) or 'NONE'}, {b}, {f})"


def row(entry, decisions, warnings):
    c = entry.children
    name = c[0].text().upper()
    flags = [f.text() for f in c[2].children]
    arity, first, last, step = (int(c[i].head) for i in (1, 3, 4, 5))
    specs = ", ".join(key_spec(s) for s in c[8].children)
    keys = f"keys(&[{specs}])"
    if name in GETKEYS_PROC:
        keys += f".proc({GETKEYS_PROC[name]})"
    if "no_mandatory_keys" in flags:
        keys += ".no_mandatory_keys()"
    return data_row(name, arity, first, last, step, "movablekeys" in flags, keys,
                    decisions, warnings, bool(c[9].children), flags)


def data_row(name, arity, first, last, step, movable, keys, decisions, warnings,
             container=False, flags=()):
    if name in decisions:
        dispatch, policy, null_array = decisions[name]
    else:
        base = name.split("|")[0]
        if container:
            dispatch = "Container"
        elif name in LOCAL:
            dispatch = "Local"
        elif name in TRANSACTION:
            dispatch = "Transaction"
        elif name in SUBSCRIBE:
            dispatch = "Subscribe"
        elif "blocking" in flags:
            dispatch = "Blocking"
        else:
            dispatch = "Shared"
        policy = "Emulate(Session)" if dispatch == "Local" else "Pass"
        null_array = "false"
        warnings.append(f"{name}: new row ({base}); decide its dispatch and policy")
    return (f'    c!("{name}", {arity}, {first}, {last}, {step}, {str(movable).lower()}, '
            f"{keys}, {dispatch}, {policy}, {null_array}),")


def main():
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    where = ap.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", type=int)
    where.add_argument("--socket")
    server = Server(ap.parse_args())

    names = sorted(parse(server.call("COMMAND", "LIST")).children, key=lambda n: n.text())
    top = [n.text() for n in names if "|" not in n.text()]
    info_raw = server.call("COMMAND", "INFO", *top)
    docs_raw = server.call("COMMAND", "DOCS", *top)
    help_raw = server.call("COMMAND", "HELP")
    info, docs = parse(info_raw), parse(docs_raw)
    assert len(info.children) == len(top) and len(docs.children) == 2 * len(top)

    catalog = b"*%d\r\n" % len(top) + b"".join(sorted_info(info_raw, e) for e in info.children)
    catalog += b"%%%d\r\n" % len(top) + b"".join(
        docs_raw[k.start:k.end] + sorted_docs(docs_raw, v) for k, v in docs.pairs())
    catalog += help_raw
    CATALOG.write_bytes(catalog)

    text = TABLE.read_text()
    head, rest = text.split("pub static COMMANDS: &[CommandSpec] = &[\n", 1)
    body, tail = rest.split("\n];\n", 1)
    decisions = {}
    for line in body.splitlines():
        m = ROW.match(line)
        if not m:
            sys.exit(f"cannot read this row of {TABLE}:\n{line}")
        decisions[m[1]] = (m[2], m[3], m[4])

    warnings, rows = [], {}
    for entry in info.children:
        for e in [entry] + entry.children[9].children:
            name = e.children[0].text().upper()
            rows[name] = row(e, decisions, warnings)
    for name, (arity, first, last, step, movable) in EXTRA.items():
        rows[name] = data_row(name, arity, first, last, step, movable, "keys(&[])",
                              decisions, warnings)
    gone = sorted(set(decisions) - set(rows))
    body = "\n".join(rows[n] for n in sorted(rows))
    TABLE.write_text(head + "pub static COMMANDS: &[CommandSpec] = &[\n" + body + "\n];\n" + tail)
    for w in warnings:
        print("warning:", w, file=sys.stderr)
    for name in gone:
        print(f"warning: {name}: the server does not know it; its row was dropped", file=sys.stderr)
    print(f"{len(rows)} rows; catalog {len(catalog)} bytes", file=sys.stderr)


if __name__ == "__main__":
    main()
