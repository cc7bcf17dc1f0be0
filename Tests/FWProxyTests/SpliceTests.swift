import Foundation
import Logging
import XCTest
import FWPolicy
@testable import FWProxy
import FWTestSupport

/// CONNECT tunnels end to end: curl (and openssl s_client) as the client, fwctl's proxy in
/// this process, a real TLS upstream (`openssl s_server` with a certificate the test makes)
/// and a real DNS server (dnsmasq) that the proxy asks for upstream names. Loopback only.
final class SpliceTests: XCTestCase {
    var dir: URL!
    var dns: DNSServer!
    var upstream: Daemon!
    var upstreamPort: UInt16 = 0
    var proxy: ProxyServer!
    var proxyPort: UInt16 = 0
    var accessLog: String { dir.appendingPathComponent("access.jsonl").path }

    override func setUpWithError() throws {
        let openssl = try tool("openssl")
        _ = try tool("curl")
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-splice-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        try makeCertificates(openssl)

        dns = try DNSServer(hosts: [
            .init("api.example.test", ipv4: "127.0.0.1", ttl: 60),
            .init("other.example.test", ipv4: "127.0.0.1", ttl: 60),
            .init("rebind.example.test", ipv4: "169.254.169.254", ttl: 60),
        ])
        upstreamPort = LoopbackPort.unused()
        let script = Paths.packageRoot.appendingPathComponent("Tests/FWProxyTests/Fixtures/upstream.py").path
        upstream = try Daemon([try tool("python3"), script, "\(upstreamPort)", path("upstream.pem"), path("upstream.key"),
                               path("requests.jsonl")], log: path("upstream.log"))
        try waitForTCP(upstreamPort)

        proxyPort = LoopbackPort.unused()
        let policy = try PolicyReader.parse(text: """
            version = 1
            [dns]
            servers = ["\(dns.endpoint)"]
            timeout_ms = 500
            [proxy]
            listen = "127.0.0.1:\(proxyPort)"
            access_log = "\(accessLog)"
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            ports = [\(upstreamPort)]
            [[allow]]
            host = "rebind.example.test"
            via = "proxy"
            ports = [\(upstreamPort)]
            [[allow]]
            cidr = ["127.0.0.1"]          # the upstream lives on loopback in this test
            ports = [\(upstreamPort)]
            """, file: "test.toml", baseDirectory: dir.path).policy
        proxy = try ProxyServer(policy: policy, dnsServers: policy.dns.servers!, logger: Logger(label: "test"), threads: 2)
        try proxy.start()
    }

    override func tearDown() {
        proxy?.stop()
        upstream?.stop()
        dns?.stop()
        if let dir { try? FileManager.default.removeItem(at: dir) }
    }

    func path(_ name: String) -> String { dir.appendingPathComponent(name).path }

    /// A test CA and an upstream certificate for api.example.test signed by it.
    func makeCertificates(_ openssl: String) throws {
        let steps: [[String]] = [
            ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "1",
             "-subj", "/CN=fwctl test CA", "-keyout", path("ca.key"), "-out", path("ca.pem")],
            ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", "/CN=api.example.test",
             "-keyout", path("upstream.key"), "-out", path("upstream.csr")],
            ["x509", "-req", "-in", path("upstream.csr"), "-CA", path("ca.pem"), "-CAkey", path("ca.key"), "-CAcreateserial",
             "-days", "1", "-extfile", path("san.cnf"), "-out", path("upstream.pem")],
        ]
        try "subjectAltName=DNS:api.example.test,DNS:rebind.example.test\n".write(toFile: path("san.cnf"), atomically: true, encoding: .utf8)
        for args in steps {
            let r = try FWTestSupport.run(openssl, args)
            XCTAssertEqual(r.status, 0, r.stderr)
        }
    }

    func waitForTCP(_ port: UInt16) throws {
        for _ in 0..<100 {
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var sin = sockaddr_in()
            sin.sin_family = sa_family_t(AF_INET)
            sin.sin_port = port.bigEndian
            sin.sin_addr.s_addr = UInt32(0x7f00_0001).bigEndian
            let ok = withUnsafePointer(to: &sin) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
            }
            close(fd)
            if ok { return }
            usleep(50_000)
        }
        XCTFail("nothing listens on 127.0.0.1:\(port): \(upstream.output)")
    }

    /// curl through the proxy; returns (CONNECT status, HTTP status, body).
    func curl(_ url: String, extra: [String] = []) throws -> (connect: String, http: String, body: String, exit: Int32) {
        let out = path("body-\(UUID().uuidString)")
        let r = try FWTestSupport.run(try tool("curl"), ["-sS", "--max-time", "10", "--proxy", "http://127.0.0.1:\(proxyPort)",
                                                         "--cacert", path("ca.pem"), "-o", out,
                                                         "-w", "%{http_connect} %{http_code}"] + extra + [url])
        let codes = r.stdout.split(separator: " ").map(String.init)
        let body = (try? String(contentsOfFile: out, encoding: .utf8)) ?? ""
        return (codes.first ?? "", codes.count > 1 ? codes[1] : "", body, r.status)
    }

    func testAllowedHostIsSplicedEndToEnd() throws {
        let r = try curl("https://api.example.test:\(upstreamPort)/")
        XCTAssertEqual(r.exit, 0)
        XCTAssertEqual(r.connect, "200")
        XCTAssertEqual(r.http, "200")
        XCTAssertEqual(r.body, "fwctl test upstream\n", "the upstream's own page came through")
        // Host matching is case-insensitive and ignores a trailing dot.
        XCTAssertEqual(try curl("https://API.Example.TEST.:\(upstreamPort)/", extra: ["--connect-to", "API.Example.TEST.:\(upstreamPort):api.example.test:\(upstreamPort)"]).exit, 0)
    }

    func testRefusalsAreReadableHTTPAnswers() throws {
        let cases: [(String, String, String)] = [
            ("https://other.example.test:\(upstreamPort)/", "403", "not allowed"),
            ("https://127.0.0.1:\(upstreamPort)/", "403", "IP"),
            ("https://api.example.test:443/", "403", "port"),
            ("https://rebind.example.test:\(upstreamPort)/", "403", "169.254.169.254"),
        ]
        for (url, status, reasonPart) in cases {
            let r = try curl(url, extra: ["-v"])
            XCTAssertNotEqual(r.exit, 0, url)
            XCTAssertEqual(r.connect, status, url)
            let line = try XCTUnwrap(try logLines().last, url)
            XCTAssertEqual(line["status"] as? Int, Int(status), url)
            let reason = line["reason"] as? String ?? ""
            XCTAssertTrue(reason.contains(reasonPart), "\(url): \(reason)")
        }
    }

    /// Domain fronting: the CONNECT target is allowed, the SNI names another host. The
    /// tunnel is closed before a byte reaches the upstream.
    func testSNIMustEqualTheConnectTarget() throws {
        let openssl = try tool("openssl")
        let r = try FWTestSupport.run(openssl, ["s_client", "-proxy", "127.0.0.1:\(proxyPort)", "-connect", "api.example.test:\(upstreamPort)",
                                                "-servername", "evil.example.test", "-CAfile", path("ca.pem")], input: "")
        // s_client always ends with a verify line; without a handshake there is no certificate.
        XCTAssertTrue(r.stdout.contains("no peer certificate available"), "the handshake must not complete:\n\(r.stdout)")
        let line = try XCTUnwrap(try logLines().last)
        XCTAssertEqual(line["status"] as? Int, 421)
        XCTAssertTrue((line["reason"] as? String ?? "").contains("evil.example.test"), "\(line)")
        XCTAssertEqual(line["bytes_down"] as? Int, 0)
    }

    /// 50 clients at once, each on a thread of its own.
    func testConcurrentClients() throws {
        let group = DispatchGroup()
        let lock = NSLock()
        var exits: [Int32] = []
        for _ in 0..<50 {
            group.enter()
            Thread {
                let r = try? self.curl("https://api.example.test:\(self.upstreamPort)/")
                lock.lock(); exits.append(r?.exit ?? -1); lock.unlock()
                group.leave()
            }.start()
        }
        group.wait()
        XCTAssertEqual(exits.filter { $0 == 0 }.count, 50, "\(exits)")
        // Each tunnel is logged when it closes, which can trail curl's exit a little.
        var logged = 0
        for _ in 0..<40 {
            logged = try logLines().filter { $0["status"] as? Int == 200 }.count
            if logged == 50 { break }
            usleep(50_000)
        }
        XCTAssertEqual(logged, 50)
    }

    func logLines() throws -> [[String: Any]] {
        let text = (try? String(contentsOfFile: accessLog, encoding: .utf8)) ?? ""
        return text.split(separator: "\n").compactMap { try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any] }
    }
}
