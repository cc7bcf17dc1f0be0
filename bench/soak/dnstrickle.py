#!/usr/bin/env python3
"""A steady trickle of DNS queries through fwctl watch's DNS filter, for bench/soak/watch.

Runs in the sandbox namespace. Every 1/QPS seconds it sends one query over UDP to
SERVER:53 from an ordinary socket (a fresh one each time, kernel-chosen source port), which
the ruleset redirects to watch's forwarder, and waits up to 2 s for the reply. The mix,
in turn (a fixed cycle of 20, so the shares are exact):

  8 x A    of an allowed name (the policy's rotating and static names)  -> NOERROR, >= 1 A
  3 x AAAA of an allowed rotating name                                    -> NOERROR, >= 1 AAAA
  3 x A    of a name under an allowed wildcard (*.wild.soak.test)         -> NOERROR, >= 1 A
  4 x A    of a name the policy does not allow (a new one each time)      -> NXDOMAIN
  2 x TXT  of a name the policy does not allow (a new one each time)      -> NXDOMAIN

Anything else (a timeout, another rcode, no address) counts as an error. Every INTERVAL
seconds it appends one line to STATS: "t_s sent ok_allowed ok_denied errors timeouts";
at the end (after DURATION seconds, or on SIGTERM) it prints one JSON object.

Usage: dnstrickle.py SERVER ALLOWED_FILE WILD_FILE QPS DURATION STATS [INTERVAL]
"""
import errno
import json
import os
import random
import signal
import socket
import sys
import time

# The DNS wire helpers of the watch benchmark's client.
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "watch"))
from dnsclient import build_query, parse_answers  # noqa: E402

A, AAAA, TXT = 1, 28, 16


def parse(msg):
    """(id, rcode, {rtype: count})"""
    qid, rcode, records = parse_answers(msg)
    types = {}
    for rtype, _data in records:
        types[rtype] = types.get(rtype, 0) + 1
    return qid, rcode, types


def ask(server, name, qtype):
    """'ok-noerror:N', 'nxdomain', 'rcode:R', 'timeout' or 'error:...'."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        s.settimeout(2.0)
        s.connect((server, 53))
        qid = random.randrange(65536)
        s.send(build_query(qid, name, qtype))
        deadline = time.monotonic() + 2.0
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                return "timeout"
            s.settimeout(left)
            msg = s.recv(4096)
            rid, rcode, types = parse(msg)
            if rid != qid:
                continue
            if rcode == 3:
                return "nxdomain"
            if rcode != 0:
                return f"rcode:{rcode}"
            return f"noerror:{types.get(qtype, 0)}"
    except socket.timeout:
        return "timeout"
    except OSError as e:
        return f"error:{errno.errorcode.get(e.errno, e.errno)}"
    finally:
        s.close()


def main():
    server, allowed_file, wild_file = sys.argv[1], sys.argv[2], sys.argv[3]
    qps, duration, stats_path = float(sys.argv[4]), float(sys.argv[5]), sys.argv[6]
    interval = float(sys.argv[7]) if len(sys.argv) > 7 else 60.0
    allowed = [l.split()[0] for l in open(allowed_file) if l.strip()]
    rotating = [n for n in allowed if ".rot." in n]
    wild = [l.split()[0] for l in open(wild_file) if l.strip()]
    cycle = ["allowA"] * 8 + ["allowAAAA"] * 3 + ["wildA"] * 3 + ["denyA"] * 4 + ["denyTXT"] * 2
    stop = [False]
    signal.signal(signal.SIGTERM, lambda *_: stop.__setitem__(0, True))
    c = {"sent": 0, "ok_allowed": 0, "ok_denied": 0, "errors": 0, "timeouts": 0}
    kinds = {}
    samples = []  # first few errors, for the report
    start = time.monotonic()
    next_at = start
    next_stat = start + interval
    k = 0
    stats = open(stats_path, "a", buffering=1)
    while not stop[0] and time.monotonic() - start < duration:
        kind = cycle[k % len(cycle)]
        if kind == "allowA":
            name, qtype, want = allowed[k % len(allowed)], A, "allow"
        elif kind == "allowAAAA":
            name, qtype, want = rotating[k % len(rotating)], AAAA, "allow"
        elif kind == "wildA":
            name, qtype, want = wild[k % len(wild)], A, "allow"
        elif kind == "denyA":
            name, qtype, want = f"q{k}.deny.soak.test", A, "deny"
        else:
            name, qtype, want = f"x{k:x}.exfil.test", TXT, "deny"
        r = ask(server, name, qtype)
        c["sent"] += 1
        if want == "allow" and r.startswith("noerror:") and r != "noerror:0":
            c["ok_allowed"] += 1
        elif want == "deny" and r == "nxdomain":
            c["ok_denied"] += 1
        else:
            c["errors"] += 1
            if r == "timeout":
                c["timeouts"] += 1
            key = f"{kind}:{r}"
            kinds[key] = kinds.get(key, 0) + 1
            if len(samples) < 20:
                samples.append({"t_s": round(time.monotonic() - start, 1), "name": name, "kind": kind, "result": r})
        k += 1
        now = time.monotonic()
        if now >= next_stat:
            stats.write(f"{now - start:.0f} {c['sent']} {c['ok_allowed']} {c['ok_denied']} {c['errors']} {c['timeouts']}\n")
            next_stat += interval
        next_at += 1.0 / qps
        delay = next_at - time.monotonic()
        if delay > 0:
            time.sleep(delay)
        else:
            next_at = time.monotonic()
    c["elapsed_s"] = round(time.monotonic() - start, 1)
    c["error_kinds"] = kinds
    c["first_errors"] = samples
    stats.write(f"{c['elapsed_s']:.0f} {c['sent']} {c['ok_allowed']} {c['ok_denied']} {c['errors']} {c['timeouts']}\n")
    print(json.dumps(c))


if __name__ == "__main__":
    main()
