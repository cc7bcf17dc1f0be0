import Foundation
import XCTest
import FWTestSupport

/// Transparent mode end to end, in a network namespace of the test's own (never this
/// machine's): an nft `redirect` sends the namespace's TCP 80/443 for 203.0.113.5 and
/// 2001:db8:99::5 (addresses nothing listens on) to `fwctl proxy`'s transparent port, as
/// issue 5's firewall will. The names resolve (dnsmasq in the namespace) to the real
/// upstream at 198.51.100.10 / 2001:db8::10, which the redirect leaves alone. So a curl
/// that reaches the upstream's page was carried there by the identity it presented (SNI or
/// Host), never by the address it dialed.
final class TransparentTests: XCTestCase {
    var ns: NetworkNamespace!
    var dir: URL!
    var daemons: [Daemon] = []
    let secret = "sk-real-transparent-0123456789abcdef"
    let placeholder = "sk-fwctl-placeholder-transparent"

    static let redirected = "203.0.113.5"
    static let proxyUser: UInt32 = 65534
    static let redirected6 = "2001:db8:99::5"

    override func setUpWithError() throws {
        let ip = try tool("ip"), nft = try tool("nft"), dnsmasq = try tool("dnsmasq")
        _ = try tool("curl")
        ns = try NetworkNamespace(prefix: "fwtp")
        dir = URL(fileURLWithPath: "/tmp/fwtp-\(getpid())-\(UInt32.random(in: 0..<UInt32.max))")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        chmod(dir.path, 0o755) // dnsmasq runs as nobody
        for address in ["198.51.100.10/32", "2001:db8::10/128", "\(Self.redirected)/32", "\(Self.redirected6)/128"] {
            let r = try FWTestSupport.run(ip, ["-n", ns.name, "addr", "add", address, "dev", "lo"] + (address.contains(":") ? ["nodad"] : []))
            guard r.status == 0 else { throw DaemonError("ip addr add \(address): \(r.stderr)") }
        }
        let rules = try ns.exec(nft, ["-f", "-"], input: """
            table inet fwtest {
                chain out {
                    type nat hook output priority -100; policy accept;
                    ip daddr \(Self.redirected) tcp dport { 80, 443 } redirect to :3130
                    ip6 daddr \(Self.redirected6) tcp dport { 80, 443 } redirect to :3130
                }
            }
            """)
        guard rules.status == 0 else { throw DaemonError("nft: \(rules.stderr)") }

        try TestCertificates.makeUpstream(in: dir, names: ["api.test", "mitm.test", "evil.test"])
        try secret.write(toFile: path("key"), atomically: true, encoding: .utf8)
        // The proxy drops to proxy.user (nobody): its secret and access log are that user's.
        FileManager.default.createFile(atPath: path("access.jsonl"), contents: nil)
        for file in ["key", "access.jsonl"] { chown(path(file), Self.proxyUser, Self.proxyUser) }
        chmod(path("key"), 0o400)
        try spawn("dnsmasq", [dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=", "--no-resolv", "--no-hosts",
                              "--bind-interfaces", "--listen-address=127.0.0.1", "--port=53", "--local=/test/", "--log-facility=-"]
                             + ["api.test", "mitm.test", "evil.test"].map { "--host-record=\($0),198.51.100.10,2001:db8::10,300" })
        let script = Paths.packageRoot.appendingPathComponent("Tests/FWProxyTests/Fixtures/upstream.py").path
        try spawn("upstream", [try tool("python3"), script, "443", path("upstream.pem"), path("upstream.key"), path("requests.jsonl"),
                               "--bind", "198.51.100.10", "--bind", "2001:db8::10", "--plain-port", "80"])
        try waitUntil("the upstream") {
            try ns.exec(try tool("curl"), ["-sk", "-o", "/dev/null", "--max-time", "1", "https://198.51.100.10/"]).status == 0
        }

        try """
            version = 1
            [dns]
            servers = ["127.0.0.1"]
            timeout_ms = 1000
            [proxy]
            listen = "127.0.0.1:3128"
            user = \(Self.proxyUser)
            transparent = true
            transparent_port = 3130
            ca_dir = "\(path("fwctl-ca"))"
            ca_cert = "\(path("fwctl-ca.pem"))"
            upstream_ca = "\(path("ca.pem"))"
            access_log = "\(path("access.jsonl"))"

            [[allow]]
            host = "api.test"             # spliced: TLS passes through, plain HTTP by Host
            via = "proxy"
            ports = [80, 443]

            [[allow]]
            host = "mitm.test"            # terminated: the key is injected
            via = "proxy"
            ports = [443]
            methods = ["GET"]
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "\(placeholder)"
            secret = "file:\(path("key"))"
            """.write(toFile: path("policy.toml"), atomically: true, encoding: .utf8)
        let ca = try ns.exec(Paths.fwctl, ["ca", "init", path("policy.toml")])
        guard ca.status == 0 else { throw DaemonError("fwctl ca init: \(ca.stderr)") }
        let proxy = try spawn("proxy", [Paths.fwctl, "proxy", path("policy.toml")])
        try waitUntil("fwctl proxy") { proxy.output.contains("transparent on [::1]:3130") }
    }

    override func tearDown() {
        daemons.forEach { $0.stop() }
        daemons = []
        ns?.delete()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    @discardableResult
    func spawn(_ name: String, _ argv: [String]) throws -> Daemon {
        let d = try Daemon([try tool("ip"), "netns", "exec", ns.name] + argv, log: path("\(name).log"))
        daemons.append(d)
        return d
    }

    func waitUntil(_ what: String, _ condition: () throws -> Bool) throws {
        for _ in 0..<100 {
            if try condition() { return }
            if let dead = daemons.first(where: { !$0.isRunning }) { throw DaemonError("\(what): a helper exited: \(dead.output)") }
            usleep(100_000)
        }
        throw DaemonError("\(what) not ready: \(daemons.map(\.output).joined(separator: "\n"))")
    }

    struct Answer { var status: String; var body: String; var exit: Int32; var stderr: String }

    /// curl in the namespace, with `name:port` resolved to `address` (a redirected one).
    func curl(_ url: String, resolve: String, extra: [String] = []) throws -> Answer {
        let out = path("body-\(UUID().uuidString)")
        let r = try ns.exec(try tool("curl"), ["-sS", "--max-time", "10", "--resolve", resolve, "-o", out, "-w", "%{http_code}"] + extra + [url])
        return Answer(status: r.stdout, body: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "", exit: r.status,
                      stderr: r.stderr.replacingOccurrences(of: secret, with: "<SECRET>"))
    }

    func logLines() -> [[String: Any]] { jsonLines(path("access.jsonl")) }

    /// The newest access-log line for `host`, waiting briefly (a tunnel is logged when it closes).
    func lastLine(host: String, status: Int) -> [String: Any]? {
        for _ in 0..<40 {
            if let l = logLines().last(where: { $0["host"] as? String == host && $0["status"] as? Int == status }) { return l }
            usleep(50_000)
        }
        return nil
    }

    func testTLSIsSplicedByItsSNIOverIPv4AndIPv6() throws {
        for (address, logged) in [(Self.redirected, "\(Self.redirected):443"), ("[\(Self.redirected6)]", "[\(Self.redirected6)]:443")] {
            let a = try curl("https://api.test/", resolve: "api.test:443:\(address)", extra: ["--cacert", path("ca.pem")])
            XCTAssertEqual(a.exit, 0, a.stderr)
            XCTAssertEqual(a.status, "200")
            XCTAssertEqual(a.body, "fwctl test upstream\n", "the real upstream answered, with its own certificate")
            let line = try XCTUnwrap(logLines().last(where: { $0["original_dst"] as? String == logged }) ?? {
                usleep(500_000)
                return logLines().last(where: { $0["original_dst"] as? String == logged })
            }(), "\(logLines())")
            XCTAssertEqual(line["mode"] as? String, "transparent")
            XCTAssertEqual(line["host"] as? String, "api.test")
            XCTAssertEqual(line["status"] as? Int, 200)
        }
    }

    /// The SNI names a host the policy does not allow: closed before a byte goes anywhere.
    func testUnknownSNIIsClosed() throws {
        let before = jsonLines(path("requests.jsonl")).count
        let a = try curl("https://evil.test/", resolve: "evil.test:443:\(Self.redirected)", extra: ["--cacert", path("ca.pem")])
        XCTAssertNotEqual(a.exit, 0)
        let line = try XCTUnwrap(lastLine(host: "evil.test", status: 403), "\(logLines())")
        XCTAssertEqual(line["mode"] as? String, "transparent")
        XCTAssertEqual(line["original_dst"] as? String, "\(Self.redirected):443")
        XCTAssertTrue((line["reason"] as? String ?? "").contains("not allowed"), "\(line)")
        XCTAssertEqual(jsonLines(path("requests.jsonl")).count, before)
    }

    /// A terminated entry: the client trusts fwctl's CA, sends the placeholder, and the
    /// upstream receives the real key; the echo comes back scrubbed. A Host header naming
    /// another host than the SNI is refused with 421.
    func testTerminatedConnectionInjectsAndPinsTheHost() throws {
        let a = try curl("https://mitm.test/echo", resolve: "mitm.test:443:\(Self.redirected)",
                         extra: ["--cacert", path("fwctl-ca.pem"), "-H", "x-api-key: \(placeholder)"])
        XCTAssertEqual(a.exit, 0, a.stderr)
        XCTAssertEqual(a.status, "200")
        XCTAssertEqual(a.body, "key=\(placeholder)\n", "the upstream's echo of the key reaches the client scrubbed")
        let seen = try XCTUnwrap(jsonLines(path("requests.jsonl")).last?["headers"] as? [String: String])
        XCTAssertTrue(seen["X-Api-Key"] == secret || seen["x-api-key"] == secret, "the upstream did not receive the real key")
        let ok = try XCTUnwrap(lastLine(host: "mitm.test", status: 200))
        XCTAssertEqual(ok["mode"] as? String, "transparent")
        XCTAssertEqual(ok["path"] as? String, "/echo")

        let fronted = try curl("https://mitm.test/echo", resolve: "mitm.test:443:\(Self.redirected)",
                               extra: ["--cacert", path("fwctl-ca.pem"), "-H", "x-api-key: \(placeholder)", "-H", "Host: api.test"])
        XCTAssertEqual(fronted.status, "421")
        let refused = try XCTUnwrap(lastLine(host: "mitm.test", status: 421))
        XCTAssertTrue((refused["reason"] as? String ?? "").contains("TLS SNI"), "\(refused)")
        let log = (try? String(contentsOfFile: path("access.jsonl"), encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains(secret), "the access log holds no secret")
    }

    /// Plain HTTP is identified by its Host header; a second request on the same connection
    /// naming another host gets 421.
    func testPlainHTTPIsRoutedByHostAndHeldToIt() throws {
        let a = try curl("http://api.test/hello", resolve: "api.test:80:\(Self.redirected)")
        XCTAssertEqual(a.exit, 0, a.stderr)
        XCTAssertEqual(a.status, "200")
        XCTAssertEqual(a.body, "fwctl test upstream\n")
        let line = try XCTUnwrap(lastLine(host: "api.test", status: 200))
        XCTAssertEqual(line["original_dst"] as? String, "\(Self.redirected):80")
        XCTAssertEqual(line["method"] as? String, "GET")

        let denied = try curl("http://\(Self.redirected)/", resolve: "x.test:80:127.0.0.1", extra: ["-H", "Host: evil.test"])
        XCTAssertEqual(denied.status, "403")

        // Two requests on one connection (a raw client, since curl opens a new connection for another host).
        let exchange = try ns.exec(try tool("python3"), ["-c", """
            import socket
            s = socket.create_connection(("\(Self.redirected)", 80), timeout=5)
            s.sendall(b"GET /a HTTP/1.1\\r\\nHost: api.test\\r\\n\\r\\n")
            first = b""
            # The whole first response (chunked when the scrubber re-frames it) before the second request.
            while not (b"upstream\\n" in first and (b"chunked" not in first or first.endswith(b"0\\r\\n\\r\\n"))):
                chunk = s.recv(65536)
                if not chunk:
                    break
                first += chunk
            s.sendall(b"GET /b HTTP/1.1\\r\\nHost: evil.test\\r\\n\\r\\n")
            second = b""
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                second += chunk
            print(first.split(b"\\r\\n")[0].decode())
            print(second.split(b"\\r\\n")[0].decode())
            """])
        XCTAssertEqual(exchange.stdout.split(separator: "\n"), ["HTTP/1.1 200 OK", "HTTP/1.1 421 Misdirected Request"], exchange.stderr)
    }
}
