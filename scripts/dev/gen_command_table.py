#!/usr/bin/env python3
"""One-off generator for src/commands/table.rs from a live redis-server's COMMAND.

The table is maintained by hand afterwards (policies are decisions, not data);
this script documents where the names, arities and key positions came from and
prints rows for commands a newer Redis adds. Usage: gen_command_table.py PORT
"""
import json
import sys

import redis

EXTRA = [  # Redis 7.2+ commands real clients send to any server.
    dict(name="CLIENT|SETINFO", arity=4, flags=[], first=0, last=0, step=0, nsub=0),
    dict(name="CLIENT|NO-TOUCH", arity=3, flags=[], first=0, last=0, step=0, nsub=0),
    dict(name="WAITAOF", arity=4, flags=[], first=0, last=0, step=0, nsub=0),
]

LOCAL = {"AUTH", "HELLO", "PING", "ECHO", "QUIT", "RESET", "SELECT", "INFO", "COMMAND",
         "CLIENT|SETNAME", "CLIENT|GETNAME", "CLIENT|ID", "CLIENT|SETINFO", "CLIENT|INFO",
         "CLIENT|LIST", "CLIENT|NO-TOUCH", "CLIENT|NO-EVICT", "CLIENT|HELP", "CONFIG|GET",
         "ACL|WHOAMI"}
TRANSACTION = {"MULTI", "EXEC", "DISCARD", "WATCH", "UNWATCH"}
SUBSCRIBE = {"SUBSCRIBE", "PSUBSCRIBE", "SSUBSCRIBE", "UNSUBSCRIBE", "PUNSUBSCRIBE", "SUNSUBSCRIBE"}
NULL_ARRAY = {"BLPOP", "BRPOP", "BLMOVE", "BRPOPLPUSH", "BZPOPMIN", "BZPOPMAX", "BLMPOP", "BZMPOP",
              "LMPOP", "ZMPOP", "XREAD", "XREADGROUP", "EXEC", "GEOPOS"}


def norm(x):
    if isinstance(x, bytes):
        return x.decode()
    if isinstance(x, list):
        return [norm(i) for i in x]
    return x


def main():
    r = redis.Redis(port=int(sys.argv[1]), protocol=2)
    conn = r.connection_pool.get_connection()
    conn.send_command("COMMAND")
    out = []

    def walk(c):
        c = norm(c)
        subs = c[9] if len(c) > 9 else []
        out.append(dict(name=c[0].upper(), arity=c[1], flags=c[2], first=c[3], last=c[4],
                        step=c[5], nsub=len(subs)))
        for s in subs:
            walk(s)

    for c in conn.read_response():
        walk(c)
    out += EXTRA
    out.sort(key=lambda c: c["name"])
    for c in out:
        n = c["name"]
        if c["nsub"] and n not in LOCAL:
            d = "Container"
        elif n in LOCAL:
            d = "Local"
        elif n in TRANSACTION:
            d = "Transaction"
        elif n in SUBSCRIBE:
            d = "Subscribe"
        elif n in ("XREAD", "XREADGROUP"):
            d = "BlockingWithOption"
        elif "blocking" in c["flags"] or n in ("WAIT", "WAITAOF"):
            d = "Blocking"
        else:
            d = "Shared"
        policy = "Emulate(Session)" if d == "Local" else "Pass"
        print(f'    c!("{n}", {c["arity"]}, {c["first"]}, {c["last"]}, {c["step"]}, '
              f'{str("movablekeys" in c["flags"]).lower()}, {d}, {policy}, '
              f'{str(n in NULL_ARRAY).lower()}),')


if __name__ == "__main__":
    main()
