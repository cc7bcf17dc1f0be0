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
    var bed: ProxyTestbed!
    var upstreamPort: UInt16 { bed.upstreamPort }
    var proxyPort: UInt16 { bed.proxyPort }
    func path(_ name: String) -> String { bed.path(name) }

    override func setUpWithError() throws {
        _ = try tool("curl")
        bed = try ProxyTestbed(names: ["api.example.test", "other.example.test", "rebind.example.test"],
                               certifiedNames: ["api.example.test", "rebind.example.test"])
        try bed.startProxy(allows: """
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
            """)
    }

    override func tearDown() { bed?.stop() }

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

    /// 4 MiB through a spliced tunnel, byte for byte.
    func testLargeDownloadIsIntact() throws {
        let out = path("big")
        let r = try FWTestSupport.run(try tool("curl"), ["-sS", "--max-time", "20", "--proxy", "http://127.0.0.1:\(proxyPort)",
                                                         "--cacert", path("ca.pem"), "-o", out, "-w", "%{http_code}",
                                                         "https://api.example.test:\(upstreamPort)/big"])
        XCTAssertEqual(r.stdout, "200", r.stderr)
        let body = try Data(contentsOf: URL(fileURLWithPath: out))
        XCTAssertEqual(body.count, ProxyTestbed.bigBody.count)
        XCTAssertTrue(body == ProxyTestbed.bigBody, "the 4 MiB body arrived intact")
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

    /// SIGTERM's drain: no new connections, open ones get until the timeout, then close.
    /// A tunnel the client abandons before its ClientHello still leaves an access-log line
    /// (the proxy dialed the upstream for it), with what was received.
    func testATunnelClosedBeforeItsHelloIsLogged() throws {
        XCTAssertEqual(try bed.bareConnect("api.example.test:\(upstreamPort)"), "HTTP/1.1 200 Connection established")
        let empty = try XCTUnwrap(bed.logLine(reasonContaining: "before sending anything"), "\(bed.logLines())")
        XCTAssertEqual(empty["mode"] as? String, "splice")
        XCTAssertEqual(empty["status"] as? Int, 200)
        XCTAssertEqual(empty["host"] as? String, "api.example.test")
        XCTAssertNotEqual(empty["client"] as? String, "-", "the client address is known after the close")
        // The first five bytes of a TLS record: a hello that never completes.
        _ = try bed.bareConnect("api.example.test:\(upstreamPort)", then: [0x16, 0x03, 0x01, 0x02, 0x00])
        let partial = try XCTUnwrap(bed.logLine(reasonContaining: "was complete (5 bytes)"), "\(bed.logLines())")
        XCTAssertEqual(partial["bytes_up"] as? Int, 5)
        XCTAssertEqual(bed.logLines().count, 2)
    }

    func testDrainWaitsForOpenConnectionsThenStops() throws {
        let fd = try XCTUnwrap(LoopbackPort.connect(proxyPort), "the proxy accepts")
        defer { close(fd) }
        for _ in 0..<100 where bed.proxy!.openConnections == 0 { usleep(10_000) }
        XCTAssertEqual(bed.proxy!.openConnections, 1)

        let started = Date()
        bed.proxy!.drain(timeout: .milliseconds(600))
        let took = Date().timeIntervalSince(started)
        XCTAssertGreaterThanOrEqual(took, 0.55, "an open connection is given the drain time")
        XCTAssertLessThan(took, 3)
        // The idle client was closed at the end of the drain, and nothing listens any more.
        var byte: UInt8 = 0
        XCTAssertEqual(recv(fd, &byte, 1, 0), 0, "the connection was closed")
        XCTAssertNotEqual(try curl("https://api.example.test:\(upstreamPort)/").exit, 0)
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

    func logLines() throws -> [[String: Any]] { bed.logLines() }
}
