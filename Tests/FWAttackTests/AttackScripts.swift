// The two Python programs of the attack suite, written into the lab's work directory at
// set-up (they live here, not as fixture files, so the target needs no resources).

enum AttackScripts {
    /// The attack suite's upstream: records everything that reaches it, one JSON line per
    /// event, so a test can say "nothing arrived" at the finest grain that matters.
    ///
    /// usage: upstream.py LOG CERT KEY SECRETFILE SPEC...
    ///   SPEC = KIND:ADDRESS:PORT, KIND one of
    ///     tls    TLS (certificate for every lab name), then HTTP/1.1;
    ///     plain  HTTP/1.1;
    ///     tcp    accept, log, close (SSH and other ports);
    ///     udp    log each datagram and echo it (QUIC's port).
    ///
    /// Events: connect (a TCP connection), closed (it ended before any byte arrived), bytes
    /// (the first byte arrived: a ClientHello or a request), sni (a ClientHello was
    /// parsed, with its server name), handshake, request (a complete head: method, target,
    /// headers, raw head, body), data (bytes that never made a head), udp, leak (a response
    /// that carried the secret went out), error.
    ///
    /// Paths: /echo (the x-api-key received, in the body and in X-Echo-Key); /leak/headers,
    /// /leak/body, /leak/chunks (the secret split across chunk boundaries at several
    /// places, 20 ms apart), /leak/sse, /leak/trailer, /leak/status (the reason phrase),
    /// /leak/header-name, /leak/received (the x-api-key received, split in two chunks),
    /// /leak/gzip (the x-api-key received, gzip-compressed when the client accepts it, as
    /// an API's error message would be); anything else: a fixed page.
    static let upstream = #"""
import gzip, json, socket, ssl, sys, threading, time

log_path, cert, key, secret_path = sys.argv[1:5]
specs = sys.argv[5:]
SECRET = open(secret_path).read().strip()
lock = threading.Lock()

def log(**entry):
    entry["time"] = time.time()
    line = json.dumps(entry) + "\n"
    with lock:
        with open(log_path, "a") as f:
            f.write(line)

ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)

def on_sni(sock, name, context):
    try:
        local = sock.getsockname()[0]
    except Exception:
        local = "?"
    log(event="sni", name=name, local=local)

ctx.sni_callback = on_sni

def read_head(f):
    lines = []
    while True:
        line = f.readline(65536)
        if not line:
            return lines, False
        lines.append(line)
        if line in (b"\r\n", b"\n"):
            return lines, True

def send(conn, status, reason, headers, body=b""):
    head = "HTTP/1.1 %d %s\r\n" % (status, reason)
    for n, v in headers:
        head += "%s: %s\r\n" % (n, v)
    conn.sendall(head.encode("latin1") + b"\r\n" + body)

def respond(conn, local, target, h, close):
    path = target.split("?")[0]
    extra_close = [("Connection", "close")] if close else []
    key = (h("x-api-key") or [""])[0]

    def plain(body, extra=(), status=200, reason="OK"):
        b = body if isinstance(body, bytes) else body.encode("latin1")
        send(conn, status, reason, [("Content-Type", "text/plain"), ("Content-Length", str(len(b)))] + list(extra) + extra_close, b)

    def chunked(pieces, extra=(), trailers=(), content_type="text/plain", pause=0.02):
        send(conn, 200, "OK", [("Content-Type", content_type), ("Transfer-Encoding", "chunked")] + list(extra) + extra_close)
        for p in pieces:
            p = p.encode("latin1")
            conn.sendall(b"%x\r\n%s\r\n" % (len(p), p))
            time.sleep(pause)
        conn.sendall(b"0\r\n" + b"".join(("%s: %s\r\n" % t).encode("latin1") for t in trailers) + b"\r\n")

    if path.startswith("/leak/"):
        log(event="leak", local=local, path=path)
    if path.endswith("/echo"):
        plain("key=%s\n" % key, [("X-Echo-Key", key)])
    elif path == "/leak/headers":
        plain("headers only\n", [("X-Leak", SECRET), ("Set-Cookie", "session=%s; Path=/" % SECRET),
                                 ("WWW-Authenticate", 'Bearer realm="%s"' % SECRET),
                                 ("X-Leak-Embedded", "before%safter" % SECRET), ("X-Leak-Twice", SECRET + "," + SECRET)])
    elif path == "/leak/body":
        plain("one %s two %s%s\n" % (SECRET, SECRET, SECRET))
    elif path == "/leak/chunks":
        pieces = []
        for k in (1, 2, len(SECRET) // 2, len(SECRET) - 1):
            pieces += ["<" + SECRET[:k], SECRET[k:] + ">"]
        pieces += ["["] + list(SECRET) + ["]"]
        pieces += ["(" + SECRET[:5], SECRET[5:6], SECRET[6:] + ")\n"]
        chunked(pieces)
    elif path == "/leak/sse":
        half = len(SECRET) // 2
        chunked(["data: " + SECRET[:half], SECRET[half:] + "\n\n", "data: " + SECRET + "\n\n"],
                content_type="text/event-stream", pause=0.1)
    elif path == "/leak/trailer":
        chunked(["trailer follows\n"], [("Trailer", "X-Leak")], [("X-Leak", SECRET)])
    elif path == "/leak/status":
        plain("status\n", status=299, reason=SECRET)
    elif path == "/leak/header-name":
        plain("name\n", [(SECRET, "1")])
    elif path == "/leak/received":
        chunked(["got " + key[:10], key[10:] + "\n"])
    elif path == "/leak/gzip":
        body = ("invalid x-api-key: %s\n" % key).encode("latin1")
        if "gzip" in ",".join(h("accept-encoding")).lower():
            plain(gzip.compress(body), [("Content-Encoding", "gzip")])
        else:
            plain(body)
    else:
        plain("fwctl attack upstream\n")

def serve_http(conn, local):
    f = conn.makefile("rb")
    while True:
        lines, complete = read_head(f)
        if not lines:
            return
        raw = b"".join(lines).decode("latin1")
        if not complete:
            log(event="data", local=local, raw=raw)
            return
        parts = lines[0].decode("latin1").rstrip("\r\n").split(" ")
        method, target = (parts + ["", ""])[:2]
        headers = []
        for l in lines[1:-1]:
            t = l.decode("latin1").rstrip("\r\n")
            if t[:1] in (" ", "\t") and headers:
                headers[-1][1] += " " + t.strip()
                continue
            n, _, v = t.partition(":")
            headers.append([n.strip(), v.strip()])

        def h(name):
            return [v for n, v in headers if n.lower() == name]

        body = b""
        entry = dict(event="request", local=local, method=method, target=target, headers=headers, raw=raw)
        try:
            if "chunked" in ",".join(h("transfer-encoding")).lower():
                while True:
                    size = int(f.readline(1024).split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while f.readline(65536) not in (b"\r\n", b"\n", b""):
                            pass
                        break
                    body += f.read(size)
                    f.readline(16)
            elif h("content-length"):
                body = f.read(int(h("content-length")[0]))
        finally:
            entry["body"] = body.decode("latin1")[:4096]
            log(**entry)
        close = "close" in ",".join(h("connection")).lower()
        respond(conn, local, target, h, close)
        if close:
            return

def handle(conn, peer, kind, local):
    log(event="connect", kind=kind, local=local, peer=peer[0])
    try:
        conn.settimeout(10)
        first = conn.recv(1, socket.MSG_PEEK)
        if not first:
            log(event="closed", local=local)
            return
        log(event="bytes", local=local)
        if kind == "tcp":
            return
        if kind == "tls":
            conn = ctx.wrap_socket(conn, server_side=True)
            log(event="handshake", local=local)
        serve_http(conn, local)
    except Exception as e:
        log(event="error", local=local, error="%s: %s" % (type(e).__name__, str(e)[:200]))
    finally:
        try:
            conn.close()
        except Exception:
            pass

def accept_loop(s, kind, local):
    while True:
        conn, peer = s.accept()
        threading.Thread(target=handle, args=(conn, peer, kind, local), daemon=True).start()

def udp_loop(s, local):
    while True:
        data, peer = s.recvfrom(4096)
        log(event="udp", local=local, peer=peer[0], bytes=len(data))
        s.sendto(data, peer)

for spec in specs:
    kind, rest = spec.split(":", 1)
    address, _, port = rest.rpartition(":")
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    if kind == "udp":
        s = socket.socket(family, socket.SOCK_DGRAM)
        s.bind((address, int(port)))
        threading.Thread(target=udp_loop, args=(s, address), daemon=True).start()
    else:
        s = socket.socket(family, socket.SOCK_STREAM)
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind((address, int(port)))
        s.listen(64)
        threading.Thread(target=accept_loop, args=(s, kind, address), daemon=True).start()
print("ready", flush=True)
threading.Event().wait()
"""#

    /// The attacker's client: raw bytes over TCP, through CONNECT or straight to an address
    /// (the transparent redirect), optionally inside TLS with any SNI (or none), trusting
    /// fwctl's CA and the upstream's (so that a pass-through would complete the handshake
    /// and show up at the upstream). Runs every attempt of a JSON list; prints one result
    /// each: the CONNECT answer, the TLS outcome, every byte read back, how reading ended.
    ///
    /// usage: client.py ATTEMPTS-JSON CAFILE...
    static let client = #"""
import json, socket, ssl, sys, time

attempts = json.loads(sys.argv[1])
cas = sys.argv[2:]

def split(hostport):
    if hostport.startswith("["):
        h, _, p = hostport[1:].partition("]:")
        return h, int(p)
    h, _, p = hostport.rpartition(":")
    return h, int(p)

def read_all(sock, total, idle):
    out = b""
    deadline = time.monotonic() + total
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return out, "timeout"
        sock.settimeout(min(left, idle) if out else left)
        try:
            d = sock.recv(65536)
        except socket.timeout:
            if out:
                return out, "idle"
            continue
        except (ssl.SSLError, OSError) as e:
            return out, "error: %s" % type(e).__name__
        if not d:
            return out, "eof"
        out += d

def connect_answer(sock):
    buf = b""
    sock.settimeout(3)
    while b"\r\n\r\n" not in buf:
        d = sock.recv(4096)
        if not d:
            break
        buf += d
    head, _, rest = buf.partition(b"\r\n\r\n")
    return head, rest

results = []
for a in attempts:
    r = {"name": a["name"]}
    results.append(r)
    try:
        h, p = split(a.get("proxy") or a["dial"])
        sock = socket.create_connection((h, p), timeout=3)
        if a.get("connect"):
            sock.sendall(("CONNECT %s HTTP/1.1\r\nHost: %s\r\n\r\n" % (a["connect"], a["connect"])).encode("latin1"))
            head, rest = connect_answer(sock)
            r["connect"] = head.decode("latin1")
            if not head.startswith(b"HTTP/1.1 200"):
                more, how = read_all(sock, 1.0, 0.3)
                r["response"] = (rest + more).decode("latin1")
                r["end"] = how
                continue
        if a.get("tls"):
            context = ssl.create_default_context()
            context.check_hostname = False
            for ca in cas:
                context.load_verify_locations(ca)
            try:
                sock = context.wrap_socket(sock, server_hostname=a.get("sni"))
                r["tls"] = "ok"
            except Exception as e:
                r["tls"] = "error: %s: %s" % (type(e).__name__, e)
                continue
        pieces = a.get("send") or []
        for i, piece in enumerate(pieces):
            if i:
                time.sleep(0.05)
            sock.sendall(piece.encode("latin1"))
        data, how = read_all(sock, a.get("timeout") or 3.0, a.get("idle") or 0.6)
        r["response"] = data.decode("latin1")
        r["end"] = how
    except Exception as e:
        r["error"] = "%s: %s" % (type(e).__name__, e)
print(json.dumps(results))
"""#
}
