import Foundation
import XCTest
import FWPolicy
@testable import FWProxy
import FWTestSupport

/// Absolute-form plain HTTP on `proxy.listen` ("GET http://host/path"), end to end: curl with
/// --proxy as the client, the proxy in this process, the shared threaded upstream serving
/// plain HTTP on loopback, dnsmasq for the names. Every request is held to the identity its
/// target names; the per-request rules are those of a terminated tunnel.
final class PlainHTTPTests: XCTestCase {
    var bed: ProxyTestbed!
    var port: UInt16 { bed.plainPort! }

    override func setUpWithError() throws {
        _ = try tool("curl")
        bed = try ProxyTestbed(names: ["api.example.test", "other.example.test", "rules.example.test", "keys.example.test",
                                       "rebind.example.test", "denied.example.test"],
                               certifiedNames: ["api.example.test"], plainHTTP: true)
        let allows = """
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            ports = [\(port)]
            [[allow]]
            host = "other.example.test"
            via = "proxy"
            ports = [\(port)]
            [[allow]]
            host = "rules.example.test"
            via = "proxy"
            ports = [\(port)]
            methods = ["GET"]
            paths = ["/ok", "/ok/*"]
            [[allow]]
            host = "keys.example.test"
            via = "proxy"
            ports = [\(port)]
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "sk-placeholder"
            secret = "env:FWCTL_TEST_PLAIN_KEY"
            [[allow]]
            host = "rebind.example.test"
            via = "proxy"
            ports = [\(port)]
            [[allow]]
            cidr = ["127.0.0.1"]          # the upstream lives on loopback in this test
            ports = [\(port)]
            """
        let policy = try PolicyReader.parse(text: "version = 1\n[proxy]\n\(allows)", file: "secrets.toml", baseDirectory: bed.dir.path).policy
        let secrets = try SecretStore(policy: policy, environment: ["FWCTL_TEST_PLAIN_KEY": "sk-real-plain-0123456789"])
        let authority = try CertificateAuthority.initialize(caDir: bed.path("fwctl-ca"), caCert: bed.path("fwctl-ca.pem"), owner: nil).authority
        try bed.startProxy(proxyKeys: "max_body_bytes = 1000", allows: allows, secrets: secrets, authority: authority)
    }

    override func tearDown() { bed?.stop() }

    struct Answer { var status: String; var body: String; var headers: String; var stderr: String; var exit: Int32 }

    /// curl through the proxy for plain-HTTP `urls` (one connection, reused), with `extra` options.
    func curl(_ urls: [String], extra: [String] = []) throws -> Answer {
        let out = bed.path("body-\(UUID().uuidString)"), dump = bed.path("headers-\(UUID().uuidString)")
        let r = try FWTestSupport.run(try tool("curl"), ["-sS", "--max-time", "10", "--proxy", "http://127.0.0.1:\(bed.proxyPort)",
                                                         "-o", out, "-D", dump, "-w", "%{http_code} "] + extra + urls)
        return Answer(status: r.stdout.trimmingCharacters(in: .whitespaces),
                      body: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                      headers: (try? String(contentsOfFile: dump, encoding: .utf8)) ?? "", stderr: r.stderr, exit: r.status)
    }

    func curl(_ url: String, extra: [String] = []) throws -> Answer { try curl([url], extra: extra) }

    func testAllowedHostIsForwardedInOriginForm() throws {
        let a = try curl("http://api.example.test:\(port)/hello?x=1")
        XCTAssertEqual(a.exit, 0)
        XCTAssertEqual(a.status, "200")
        XCTAssertEqual(a.body, "fwctl test upstream\n")
        let seen = try XCTUnwrap(bed.upstreamRequests().last)
        XCTAssertEqual(seen["path"] as? String, "/hello?x=1", "the upstream gets the origin form, query kept")
        let headers = try XCTUnwrap(seen["headers"] as? [String: String])
        XCTAssertEqual(headers["Host"], "api.example.test:\(port)")
        XCTAssertNil(headers["Proxy-Connection"], "hop-by-hop headers of the client's hop stay behind")
        let line = try XCTUnwrap(bed.lastLogLine(status: 200))
        XCTAssertEqual(line["mode"] as? String, "http")
        XCTAssertEqual(line["host"] as? String, "api.example.test")
        XCTAssertEqual(line["path"] as? String, "/hello")
        XCTAssertEqual(line["method"] as? String, "GET")
    }

    /// curl keeps its proxy connection for the next URL, also for another host: each
    /// request goes to the host it names.
    func testOneClientConnectionServesSeveralHosts() throws {
        let a = try curl(["http://api.example.test:\(port)/a", "http://other.example.test:\(port)/b",
                          "http://api.example.test:\(port)/c"], extra: ["-v", "-o", "/dev/null", "-o", "/dev/null"])
        XCTAssertEqual(a.exit, 0)
        XCTAssertEqual(a.status, "200 200 200")
        XCTAssertEqual(a.stderr.components(separatedBy: "Re-using existing").count - 1, 2,
                       "curl kept its one proxy connection:\n\(a.stderr)")
        let seen = bed.upstreamRequests().suffix(3)
        XCTAssertEqual(seen.map { $0["path"] as? String }, ["/a", "/b", "/c"])
        XCTAssertEqual(seen.map { ($0["headers"] as? [String: String])?["Host"] },
                       ["api.example.test:\(port)", "other.example.test:\(port)", "api.example.test:\(port)"])
        for _ in 0..<40 where bed.logLines().count < 3 { usleep(50_000) }
        XCTAssertEqual(bed.logLines().map { $0["host"] as? String },
                       ["api.example.test", "other.example.test", "api.example.test"])
    }

    func testRefusals() throws {
        let cases: [(url: String, extra: [String], status: String, reason: String)] = [
            ("http://denied.example.test:\(port)/", [], "403", "not allowed"),
            ("http://127.0.0.1:\(port)/", [], "403", "IP address"),
            ("http://api.example.test:\(port + 1)/", [], "403", "port \(port + 1) is not allowed"),
            ("http://api.example.test:\(port)/", ["-H", "Host: other.example.test"], "421",
             "Host header \"other.example.test\" does not match the request target \"api.example.test\""),
            ("http://rules.example.test:\(port)/ok/1", ["-X", "DELETE"], "403", "method \"DELETE\""),
            ("http://rules.example.test:\(port)/secret", [], "403", "path \"/secret\""),
            ("http://keys.example.test:\(port)/", ["-H", "x-api-key: sk-placeholder"], "403", "only over TLS"),
            ("http://rebind.example.test:\(port)/", [], "403", "169.254.169.254"),
            ("http://api.example.test:\(port)/", ["--data-binary", String(repeating: "x", count: 2000)], "413", "max_body_bytes"),
        ]
        for c in cases {
            let requestsBefore = bed.upstreamRequests().count
            let a = try curl(c.url, extra: c.extra)
            XCTAssertEqual(a.status, c.status, "\(c.url) \(c.extra)")
            let reason = ProxyTestbed.header("X-Fwctl-Reason", in: a.headers) ?? ""
            XCTAssertTrue(reason.contains(c.reason), "\(c.url): \(reason)")
            XCTAssertTrue(a.body.hasPrefix("fwctl: "), a.body)
            XCTAssertEqual(bed.upstreamRequests().count, requestsBefore, "\(c.url): nothing reached the upstream")
            let line = try XCTUnwrap(bed.lastLogLine(status: Int(c.status)!), c.url)
            XCTAssertEqual(line["mode"] as? String, "http")
            XCTAssertTrue((line["reason"] as? String ?? "").contains(c.reason), "\(line)")
        }
        // The inject refusal names no secret, and the secret never went out.
        let log = (try? String(contentsOfFile: bed.accessLog, encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains("sk-real-plain"))
    }

    func testNonProxyTargetsAreRefusedReadably() throws {
        // An https:// target without CONNECT, and an origin-form request to the proxy port.
        let raw: [(String, String)] = [
            ("GET https://api.example.test/ HTTP/1.1\r\nHost: api.example.test\r\n\r\n", "through CONNECT"),
            ("GET / HTTP/1.1\r\nHost: api.example.test\r\n\r\n", "not absolute"),
        ]
        for (request, reason) in raw {
            let answer = try Self.exchange(request, port: bed.proxyPort)
            XCTAssertTrue(answer.hasPrefix("HTTP/1.1 400 "), answer)
            XCTAssertTrue(answer.contains(reason), answer)
        }
    }

    /// A query right after the authority (no "/") is still the same host, sent as "/?x=1".
    func testQueryWithoutPath() throws {
        let a = try curl("http://api.example.test:\(port)?x=1")
        XCTAssertEqual(a.status, "200", a.headers)
        XCTAssertEqual(bed.upstreamRequests().last?["path"] as? String, "/?x=1")
    }

    func testPostBodyStreamsToTheUpstream() throws {
        let a = try curl("http://api.example.test:\(port)/upload", extra: ["--data-binary", String(repeating: "y", count: 900)])
        XCTAssertEqual(a.status, "200")
        XCTAssertEqual(a.body, "received 900\n")
    }

    /// One request on a fresh connection; returns everything the server sent before closing.
    static func exchange(_ request: String, port: UInt16) throws -> String {
        guard let fd = LoopbackPort.connect(port) else { throw DaemonError("cannot connect to 127.0.0.1:\(port)") }
        defer { close(fd) }
        var tv = timeval(tv_sec: 5, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, socklen_t(MemoryLayout<timeval>.size))
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, 0) }
        var out: [UInt8] = []
        var buf = [UInt8](repeating: 0, count: 4096)
        while true {
            let n = recv(fd, &buf, buf.count, 0)
            if n <= 0 { break }
            out += buf[0..<n]
        }
        return String(decoding: out, as: UTF8.self)
    }
}
