#!/usr/bin/env python3
"""The DNS filter's added latency, measured from inside the sandbox.

Sends sequential A queries two ways, interleaved (the order alternates query by query):
  - "filter": to SERVER:53 from an ordinary socket, which the ruleset's nat output chain
    redirects to fwctl watch's forwarder on 127.0.0.1:filter_port;
  - "direct": the same query to SERVER:53 from a socket carrying fwctl's mark
    (SO_MARK 0x46574453, needs CAP_NET_ADMIN), which the redirect lets through to the server.
Each query gets a fresh socket (as a stub resolver picks a fresh source port), created,
bound and connected before the clock starts; the time is send() to the matching reply, on
the monotonic clock. The source ports are never reused in a run and lie outside the
ephemeral range, where watch's forwarder sends its own (marked) queries from: filter-path
queries from FILTER_PORT + k, direct ones from DIRECT_PORT + k (k counts from --port-base).
A port reused while conntrack still holds the flow of a marked query from it would skip the
redirect (NAT is decided on a flow's first packet) and reach the server directly. A query that times out, or a reply that is not NOERROR with an A record
(the expected one, with --expect), counts as a failure.

Usage: dnsclient.py SERVER NAMES_FILE N [--expect FILE] [--warmup K] [--raw FILE] [--label L]
                    [--port-base B]
NAMES_FILE: one name a line, used in turn (query i asks names[i % len]). --expect FILE: lines
"name address": the filter path's answer must hold that address. Prints one JSON object.
"""
import argparse
import gc
import json
import os
import socket
import struct
import time

SO_MARK = 36
MARK = 0x46574453
FILTER_PORT = 10000
DIRECT_PORT = 20000
PORTS = 10000


def build_query(qid, name, qtype=1):
    header = struct.pack("!HHHHHH", qid, 0x0100, 1, 0, 0, 0)
    qname = b"".join(bytes([len(label)]) + label.encode() for label in name.rstrip(".").split(".")) + b"\0"
    return header + qname + struct.pack("!HH", qtype, 1)


def skip_name(msg, i):
    while True:
        n = msg[i]
        if n == 0:
            return i + 1
        if n & 0xC0 == 0xC0:
            return i + 2
        i += 1 + n


def parse_answers(msg):
    """(id, rcode, [(rtype, rdata)]) of the answer section. bench/soak/dnstrickle.py uses it too."""
    qid, flags, qd, an = struct.unpack("!HHHH", msg[:8])
    i = 12
    for _ in range(qd):
        i = skip_name(msg, i) + 4
    records = []
    for _ in range(an):
        i = skip_name(msg, i)
        rtype, _rclass, _ttl, rdlen = struct.unpack("!HHIH", msg[i:i + 10])
        i += 10
        records.append((rtype, msg[i:i + rdlen]))
        i += rdlen
    return qid, flags & 0xF, records


def parse_reply(msg):
    """(id, rcode, [A addresses])"""
    qid, rcode, records = parse_answers(msg)
    return qid, rcode, [socket.inet_ntoa(d) for t, d in records if t == 1 and len(d) == 4]


def ask(server, name, marked, qid, port, timeout=2.0):
    """Latency in microseconds and the A addresses; None on failure."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        if marked:
            s.setsockopt(socket.SOL_SOCKET, SO_MARK, MARK)
        s.bind(("0.0.0.0", port))
        s.settimeout(timeout)
        s.connect((server, 53))
        q = build_query(qid, name)
        t0 = time.perf_counter_ns()
        s.send(q)
        while True:
            msg = s.recv(4096)
            if len(msg) >= 12 and struct.unpack("!H", msg[:2])[0] == qid:
                break
        t1 = time.perf_counter_ns()
    except (socket.timeout, OSError):
        return None, []
    finally:
        s.close()
    _, rcode, addresses = parse_reply(msg)
    if rcode != 0 or not addresses:
        return None, addresses
    return (t1 - t0) / 1000.0, addresses


def pct(values, p):
    """Nearest rank."""
    v = sorted(values)
    k = max(1, -(-len(v) * p // 100))
    return v[int(k) - 1]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("server")
    ap.add_argument("names")
    ap.add_argument("n", type=int)
    ap.add_argument("--expect")
    ap.add_argument("--warmup", type=int, default=0)
    ap.add_argument("--raw")
    ap.add_argument("--label", default="")
    ap.add_argument("--port-base", type=int, default=0)
    a = ap.parse_args()
    names = [line.strip() for line in open(a.names) if line.strip()]
    expect = {}
    if a.expect:
        for line in open(a.expect):
            if line.strip():
                name, address = line.split()
                expect[name] = address
    gc.disable()
    if a.port_base + a.warmup + a.n > PORTS:
        raise SystemExit("dnsclient.py: more than %d queries per path in one run" % PORTS)
    qid = os.getpid() & 0xFFFF
    k = a.port_base
    for i in range(a.warmup):
        name = names[i % len(names)]
        for marked in (False, True):
            qid = (qid + 1) & 0xFFFF
            ask(a.server, name, marked, qid, (DIRECT_PORT if marked else FILTER_PORT) + k)
        k += 1
    lat = {"filter": [], "direct": []}
    failures = {"filter": 0, "direct": 0}
    wrong = 0
    raw = []
    for i in range(a.n):
        name = names[i % len(names)]
        order = ("filter", "direct") if i % 2 == 0 else ("direct", "filter")
        for path in order:
            qid = (qid + 1) & 0xFFFF
            us, addresses = ask(a.server, name, path == "direct", qid, (DIRECT_PORT if path == "direct" else FILTER_PORT) + k)
            if us is None:
                failures[path] += 1
                continue
            if name in expect and expect[name] not in addresses:
                wrong += 1
            lat[path].append(us)
            raw.append((a.label, i, path, name, us))
        k += 1
    if a.raw:
        with open(a.raw, "a") as f:
            for r in raw:
                f.write("%s\t%d\t%s\t%s\t%.1f\n" % r)
    out = {"label": a.label, "queries_per_path": a.n, "failures": failures, "wrong_answers": wrong}
    for path, v in lat.items():
        if v:
            out[path] = {"p50_us": pct(v, 50), "p90_us": pct(v, 90), "p99_us": pct(v, 99),
                         "mean_us": round(sum(v) / len(v), 1), "min_us": min(v), "max_us": max(v)}
    if lat["filter"] and lat["direct"]:
        out["added_p50_us"] = round(out["filter"]["p50_us"] - out["direct"]["p50_us"], 1)
        out["added_p90_us"] = round(out["filter"]["p90_us"] - out["direct"]["p90_us"], 1)
        out["added_p99_us"] = round(out["filter"]["p99_us"] - out["direct"]["p99_us"], 1)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
