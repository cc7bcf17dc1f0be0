#!/usr/bin/env python3
"""The lab's listeners and probes (Tests/FWTestSupport/Lab.swift runs it with `ip netns exec`).

  labnet.py serve --tcp 22,80 --udp 443 --udp-address 203.0.113.10 ...
      TCP listeners and UDP echo on each given address (IPv4 and IPv6);
      prints "ready" once every socket is bound.
  labnet.py tcp HOST PORT [--family 4|6] [--timeout S]
  labnet.py udp HOST PORT [--family 4|6] [--timeout S]
      one probe; prints JSON {"outcome", "elapsed", "detail"}, where elapsed covers the
      connection attempt only (not the start of Python or the name lookup).
"""
import argparse
import errno
import json
import selectors
import socket
import sys
import time

# What a firewall's refusal looks like to the client: a TCP reset (ECONNREFUSED), an ICMP
# error (unreachable, admin-prohibited: EHOSTUNREACH, ENETUNREACH, EACCES) or a local
# drop in the output hook (EPERM).
REFUSALS = {errno.ECONNREFUSED, errno.EHOSTUNREACH, errno.ENETUNREACH, errno.EACCES, errno.EPERM}


def serve(args):
    sel = selectors.DefaultSelector()
    for address in args.udp_address:
        # TCP per address too (not one wildcard socket per port): a test may run a server
        # of its own on another outside address and the same port.
        family = socket.AF_INET6 if ":" in address else socket.AF_INET
        for port in args.tcp:
            s = socket.socket(family, socket.SOCK_STREAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind((address, port))
            s.listen(64)
            sel.register(s, selectors.EVENT_READ, "tcp")
    for address in args.udp_address:
        # Bound per address, so each reply leaves from the address the probe asked:
        # a connected UDP client ignores replies from any other source.
        for port in args.udp:
            family = socket.AF_INET6 if ":" in address else socket.AF_INET
            s = socket.socket(family, socket.SOCK_DGRAM)
            s.bind((address, port))
            sel.register(s, selectors.EVENT_READ, "udp")
    print("ready", flush=True)
    while True:
        for key, _ in sel.select():
            s = key.fileobj
            if key.data == "tcp":
                conn, _ = s.accept()
                conn.close()  # a completed handshake is all a probe looks for
            else:
                data, peer = s.recvfrom(2048)
                s.sendto(data, peer)


def addresses(host, port, family, kind):
    families = {None: socket.AF_UNSPEC, 4: socket.AF_INET, 6: socket.AF_INET6}
    infos = socket.getaddrinfo(host, port, families[family], kind)
    return infos[0][0], infos[0][4]


def report(outcome, started, detail=""):
    print(json.dumps({"outcome": outcome, "elapsed": time.monotonic() - started, "detail": detail}))


def refusal_or_raise(error, started):
    if error.errno in REFUSALS:
        report("refused", started, errno.errorcode[error.errno])
    else:
        raise error


def probe_tcp(args):
    family, target = addresses(args.host, args.port, args.family, socket.SOCK_STREAM)
    s = socket.socket(family, socket.SOCK_STREAM)
    s.settimeout(args.timeout)
    started = time.monotonic()
    try:
        s.connect(target)
        report("connected", started, target[0])
    except socket.timeout:
        report("timeout", started, target[0])
    except OSError as e:
        refusal_or_raise(e, started)


def probe_udp(args):
    family, target = addresses(args.host, args.port, args.family, socket.SOCK_DGRAM)
    s = socket.socket(family, socket.SOCK_DGRAM)
    s.settimeout(args.timeout)
    started = time.monotonic()
    try:
        s.connect(target)
        s.send(b"fwctl-lab-probe")
        s.recv(2048)
        report("answered", started, target[0])
    except socket.timeout:
        report("no-answer", started, target[0])
    except OSError as e:
        refusal_or_raise(e, started)


def main():
    parser = argparse.ArgumentParser()
    sub = parser.add_subparsers(dest="command", required=True)
    ports = lambda text: [int(p) for p in text.split(",") if p]
    s = sub.add_parser("serve")
    s.add_argument("--tcp", type=ports, default=[])
    s.add_argument("--udp", type=ports, default=[])
    s.add_argument("--udp-address", action="append", default=[])
    for name in ("tcp", "udp"):
        p = sub.add_parser(name)
        p.add_argument("host")
        p.add_argument("port", type=int)
        p.add_argument("--family", type=int, choices=[4, 6])
        p.add_argument("--timeout", type=float, default=2.0)
    args = parser.parse_args()
    {"serve": serve, "tcp": probe_tcp, "udp": probe_udp}[args.command](args)


if __name__ == "__main__":
    sys.exit(main())
