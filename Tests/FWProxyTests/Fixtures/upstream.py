"""A small threaded HTTPS upstream for the proxy tests: answers every GET with a fixed
page, and records the request headers it received (one JSON line per request) so tests
can see what the proxy forwarded. Loopback (or a test's own namespace) only; stopped by
the test.

usage: upstream.py PORT CERT KEY RECORD [--bind ADDRESS ...] [--plain-port PORT]
  --bind        where to listen (default 127.0.0.1; may be given more than once, IPv6 too);
  --plain-port  also serve plain HTTP (same handler) on this port.

Paths with behaviour of their own:
  /big   4 MiB of a repeating pattern (bytes 0..255), Content-Length framed;
  /echo  (also under a prefix, e.g. /v1/echo) answers with the x-api-key it received, in the body and in X-Echo-Key (for
         scrubbing tests: the proxy must replace the real key before the client sees it);
  /sse   text/event-stream, three events 300 ms apart, chunked;
POST reads the body (Content-Length or chunked) and answers with its length."""
import argparse, http.server, json, socket, ssl, sys, threading, time

args = argparse.ArgumentParser()
args.add_argument("port", type=int)
args.add_argument("cert")
args.add_argument("key")
args.add_argument("record")
args.add_argument("--bind", action="append")
args.add_argument("--plain-port", type=int)
opts = args.parse_args()
record = opts.record
BIG = bytes(range(256)) * (4 * 1024 * 1024 // 256)

class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"

    def record(self, extra=None):
        entry = {"method": self.command, "path": self.path, "headers": dict(self.headers)}
        entry.update(extra or {})
        with open(record, "a") as f:
            f.write(json.dumps(entry) + "\n")

    def answer(self, body, content_type="text/plain", headers=()):
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        for k, v in headers:
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        self.record()
        if self.path.split("?")[0].endswith("/echo"):
            got = self.headers.get("x-api-key", "")
            self.answer(("key=" + got + "\n").encode(), headers=[("X-Echo-Key", got)])
        elif self.path.split("?")[0].endswith("/big"):
            self.answer(BIG, content_type="application/octet-stream")
        elif self.path.startswith("/sse"):
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for i in range(3):
                data = ("data: event %d\n\n" % i).encode()
                self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))
                self.wfile.flush()
                if i < 2:
                    time.sleep(0.3)
            self.wfile.write(b"0\r\n\r\n")
            self.wfile.flush()
        else:
            self.answer(b"fwctl test upstream\n")

    def do_POST(self):
        if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
            body = b""
            while True:
                size = int(self.rfile.readline().strip(), 16)
                if size == 0:
                    self.rfile.readline()
                    break
                body += self.rfile.read(size)
                self.rfile.readline()
        else:
            body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        self.record({"body_bytes": len(body)})
        self.answer(("received %d\n" % len(body)).encode())

    def log_message(self, *args):
        pass

class Server(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, address, tls):
        self.address_family = socket.AF_INET6 if ":" in address[0] else socket.AF_INET
        super().__init__(address, Handler)
        if tls:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(opts.cert, opts.key)
            self.socket = context.wrap_socket(self.socket, server_side=True)

servers = []
for address in opts.bind or ["127.0.0.1"]:
    servers.append(Server((address, opts.port), True))
    if opts.plain_port:
        servers.append(Server((address, opts.plain_port), False))
for s in servers[1:]:
    threading.Thread(target=s.serve_forever, daemon=True).start()
servers[0].serve_forever()
