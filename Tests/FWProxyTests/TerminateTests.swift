import Foundation
import Logging
import XCTest
import FWPolicy
@testable import FWProxy
import FWTestSupport

/// Terminated CONNECT tunnels end to end: curl as the client (trusting fwctl's own CA for
/// the terminated hop), fwctl's proxy in this process, a real TLS upstream (a threaded
/// python server with a certificate from a test CA, given to the proxy as `upstream_ca`)
/// that records the headers it received, and dnsmasq for the upstream name. Loopback only.
///
/// The secret is random per run and never printed: failure messages show text with the
/// secret replaced by <SECRET>.
final class TerminateTests: XCTestCase {
    var bed: ProxyTestbed!
    var upstreamPort: UInt16 { bed.upstreamPort }
    var proxyPort: UInt16 { bed.proxyPort }
    var accessLog: String { bed.accessLog }
    func path(_ name: String) -> String { bed.path(name) }
    let secret = "sk-real-" + UUID().uuidString.lowercased()
    let placeholder = "sk-fwctl-placeholder-0001"
    var host: String { "api.example.test:\(upstreamPort)" }

    override func setUpWithError() throws {
        _ = try tool("curl")
        bed = try ProxyTestbed(names: ["api.example.test", "wrongcert.example.test"], certifiedNames: ["api.example.test"])
        let authority = try CertificateAuthority.initialize(caDir: path("fwctl-ca"), caCert: path("fwctl-ca.pem"), owner: nil).authority
        let allows = """
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            ports = [\(upstreamPort)]
            methods = ["GET", "POST"]
            paths = ["/v1/*", "/echo", "/sse"]
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "\(placeholder)"
            secret = "env:FWCTL_TEST_KEY"
            [[allow]]
            host = "wrongcert.example.test"   # the upstream's certificate does not name it
            via = "proxy"
            ports = [\(upstreamPort)]
            methods = ["GET"]
            [[allow]]
            cidr = ["127.0.0.1"]          # the upstream lives on loopback in this test
            ports = [\(upstreamPort)]
            """
        let proxyKeys = """
            ca_dir = "\(path("fwctl-ca"))"
            ca_cert = "\(path("fwctl-ca.pem"))"
            upstream_ca = "\(path("ca.pem"))"
            max_body_bytes = 1000
            """
        // The policy is parsed once for the secret store, then the testbed starts the proxy with it.
        let policy = try PolicyReader.parse(text: "version = 1\n[proxy]\n\(allows)", file: "secrets.toml", baseDirectory: bed.dir.path).policy
        let secrets = try SecretStore(policy: policy, environment: ["FWCTL_TEST_KEY": secret])
        try bed.startProxy(proxyKeys: proxyKeys, allows: allows, secrets: secrets, authority: authority)
    }

    override func tearDown() { bed?.stop() }

    /// Text safe to print: the secret replaced.
    func redact(_ s: String) -> String { s.replacingOccurrences(of: secret, with: "<SECRET>") }

    struct CurlResult {
        var codes: [String]          // per URL: "CONNECT HTTP NUM_CONNECTS"
        var body: String
        var headers: String
        var stdout: String
        var bodyPath: String
        var stderr: String
        var exit: Int32
        var http: String { codes.first?.split(separator: " ").dropFirst().first.map(String.init) ?? "" }
    }

    /// curl through the proxy with the placeholder (unless `key` says otherwise).
    func curl(_ paths: [String], key: String? = "", extra: [String] = []) throws -> CurlResult {
        let out = path("body-\(UUID().uuidString)"), hdr = path("headers-\(UUID().uuidString)")
        var args = ["-sS", "--max-time", "10", "--proxy", "http://127.0.0.1:\(proxyPort)", "--cacert", path("fwctl-ca.pem"),
                    "-o", out, "-D", hdr, "-w", "%{http_connect} %{http_code} %{num_connects}\\n"]
        if let key { args += ["-H", "x-api-key: \(key.isEmpty ? placeholder : key)"] }
        args += extra
        for p in paths {
            if p != paths.first { args += ["-o", out] }
            args.append("https://\(host)\(p)")
        }
        let r = try FWTestSupport.run(try tool("curl"), args)
        return CurlResult(codes: r.stdout.split(separator: "\n").map(String.init),
                          body: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                          headers: (try? String(contentsOfFile: hdr, encoding: .utf8)) ?? "",
                          stdout: r.stdout, bodyPath: out, stderr: r.stderr, exit: r.status)
    }


    func upstreamRequests() -> [[String: Any]] { bed.upstreamRequests() }
    func lastLogLine(status: Int) -> [String: Any]? { bed.lastLogLine(status: status) }
    func header(_ name: String, in text: String) -> String? { ProxyTestbed.header(name, in: text) }
    func logLines() -> [[String: Any]] { bed.logLines() }

    // MARK: - Cases

    func testInjectedKeyReachesTheUpstream() throws {
        let r = try curl(["/v1/models?x=1"])
        XCTAssertEqual(r.exit, 0, redact(r.stderr))
        XCTAssertEqual(r.http, "200", redact(r.stdout))
        XCTAssertEqual(r.body, "fwctl test upstream\n")
        let seen = upstreamRequests()
        XCTAssertEqual(seen.count, 1)
        let headers = seen.first?["headers"] as? [String: String] ?? [:]
        let key = headers.first { $0.key.lowercased() == "x-api-key" }?.value
        XCTAssertTrue(key == secret, "the upstream must see the real key (it saw \(key.map(redact) ?? "none"))")
        XCTAssertFalse(try String(contentsOfFile: path("requests.jsonl"), encoding: .utf8).contains(placeholder),
                       "the placeholder must never reach the upstream")
        let line = try XCTUnwrap(lastLogLine(status: 200))
        XCTAssertEqual(line["mode"] as? String, "mitm")
        XCTAssertEqual(line["method"] as? String, "GET")
        XCTAssertEqual(line["path"] as? String, "/v1/models")
        XCTAssertFalse(try String(contentsOfFile: accessLog, encoding: .utf8).contains(secret), "no secret in the access log")
    }

    /// 4 MiB through the terminated tunnel (decrypted, scrubbed, re-encrypted), byte for
    /// byte, twice on one kept-alive connection.
    func testLargeDownloadIsIntact() throws {
        // Two different paths: the helper writes every URL after the first to the same file.
        let r = try curl(["/v1/big", "/v1/big?again"])
        XCTAssertEqual(r.exit, 0, redact(r.stderr))
        XCTAssertTrue(r.codes == ["200 200 1", "000 200 0"], "both downloads on one connection: \(r.codes.map { $0.prefix(40) })")
        let body = try Data(contentsOf: URL(fileURLWithPath: r.bodyPath))
        XCTAssertEqual(body.count, ProxyTestbed.bigBody.count)
        XCTAssertTrue(body == ProxyTestbed.bigBody, "the 4 MiB body arrived intact")
        XCTAssertEqual(lastLogLine(status: 200)?["bytes_down"] as? Int, ProxyTestbed.bigBody.count)
    }

    func testRefusalsOnTheHead() throws {
        let cases: [(name: String, path: String, key: String?, extra: [String], status: String, reason: String)] = [
            ("wrong key", "/v1/models", "sk-something-else", [], "403", "placeholder"),
            ("missing key", "/v1/models", nil, [], "403", "missing"),
            ("method", "/v1/models", "", ["-X", "DELETE"], "403", "method"),
            ("path", "/admin", "", [], "403", "path"),
            ("host", "/v1/models", "", ["-H", "Host: other.test"], "421", "Host header"),
            ("body", "/v1/messages", "", ["--data-binary", String(repeating: "x", count: 2000)], "413", "max_body_bytes"),
            // Inside the tunnel a request names a path; it may not ask the upstream to proxy.
            ("asterisk target", "/v1/models", "", ["--request-target", "*"], "400", "not a path"),
        ]
        for c in cases {
            let r = try curl([c.path], key: c.key, extra: c.extra)
            XCTAssertEqual(r.http, c.status, "\(c.name): \(redact(r.stdout)) \(redact(r.stderr))")
            let reason = header("X-Fwctl-Reason", in: r.headers) ?? ""
            XCTAssertTrue(reason.contains(c.reason), "\(c.name): \(redact(reason))")
            XCTAssertTrue(r.body.hasPrefix("fwctl: "), "\(c.name): \(redact(r.body))")
            let line = try XCTUnwrap(lastLogLine(status: Int(c.status)!), c.name)
            XCTAssertEqual(line["mode"] as? String, "mitm", c.name)
        }
        XCTAssertEqual(upstreamRequests().count, 0, "no refused request reaches the upstream")
    }

    func testBodiesWithinTheLimitStream() throws {
        let small = try curl(["/v1/messages"], extra: ["--data-binary", String(repeating: "y", count: 500)])
        XCTAssertEqual(small.http, "200", redact(small.stderr))
        XCTAssertEqual(small.body, "received 500\n")
        // Chunked: no Content-Length to judge by, so the proxy counts.
        let chunked = try curl(["/v1/messages"], extra: ["-H", "Transfer-Encoding: chunked",
                                                         "--data-binary", String(repeating: "z", count: 300)])
        XCTAssertEqual(chunked.http, "200", redact(chunked.stderr))
        XCTAssertEqual(chunked.body, "received 300\n")
        let big = try curl(["/v1/messages"], extra: ["-H", "Transfer-Encoding: chunked",
                                                     "--data-binary", String(repeating: "z", count: 3000)])
        XCTAssertNotEqual(big.http, "200")
        XCTAssertNotNil(lastLogLine(status: 413), "a chunked body over the limit is refused as it streams")
        XCTAssertFalse(upstreamRequests().contains { $0["body_bytes"] as? Int == 3000 }, "the upstream never got the whole body")
    }

    func testAnEchoedSecretIsScrubbed() throws {
        let r = try curl(["/echo"])
        XCTAssertEqual(r.http, "200")
        XCTAssertFalse(r.body.contains(secret) || r.headers.contains(secret) || r.stdout.contains(secret) || r.stderr.contains(secret),
                       "the real key reached the client")
        XCTAssertEqual(r.body, "key=\(placeholder)\n", redact(r.body))
        XCTAssertEqual(header("X-Echo-Key", in: r.headers), placeholder)
    }

    func testKeepAliveChecksEveryRequest() throws {
        let r = try curl(["/v1/models", "/echo"])
        XCTAssertEqual(r.exit, 0, redact(r.stderr))
        XCTAssertEqual(r.codes.count, 2, r.stdout)
        XCTAssertEqual(r.codes.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }, ["200", "200"])
        XCTAssertEqual(r.codes.last?.split(separator: " ").last, "0", "the second request reused the connection: \(r.stdout)")
        XCTAssertEqual(upstreamRequests().count, 2)
        for request in upstreamRequests() {
            let headers = request["headers"] as? [String: String] ?? [:]
            XCTAssertTrue(headers.first { $0.key.lowercased() == "x-api-key" }?.value == secret, "each request is injected")
        }
        // A second request on the same connection that breaks a rule is refused too.
        let bad = try curl(["/v1/models", "/admin"])
        XCTAssertEqual(bad.codes.map { $0.split(separator: " ").dropFirst().first.map(String.init) ?? "" }, ["200", "403"])
    }

    func testServerSentEventsStream() throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: try tool("curl"))
        process.arguments = ["-sS", "-N", "--max-time", "10", "--proxy", "http://127.0.0.1:\(proxyPort)",
                             "--cacert", path("fwctl-ca.pem"), "-H", "x-api-key: \(placeholder)", "https://\(host)/sse"]
        let pipe = Pipe()
        process.standardOutput = pipe
        process.standardError = FileHandle.nullDevice
        try process.run()
        var seen: [(Date, String)] = []
        var text = ""
        while true {
            let data = pipe.fileHandleForReading.availableData
            if data.isEmpty { break }
            text += String(decoding: data, as: UTF8.self)
            seen.append((Date(), text))
        }
        process.waitUntilExit()
        XCTAssertEqual(text, "data: event 0\n\ndata: event 1\n\ndata: event 2\n\n", redact(text))
        let first = try XCTUnwrap(seen.first { $0.1.contains("event 0") }?.0)
        let last = try XCTUnwrap(seen.first { $0.1.contains("event 2") }?.0)
        XCTAssertGreaterThan(last.timeIntervalSince(first), 0.45, "events arrive as sent, not buffered")
    }

    /// The upstream's certificate is verified against the CONNECT target before the CONNECT
    /// is answered: a mismatch is a readable 502, and no request is sent.
    func testUpstreamHostnameIsVerified() throws {
        let out = path("body-wrongcert")
        let r = try FWTestSupport.run(try tool("curl"), ["-sS", "--max-time", "10", "--proxy", "http://127.0.0.1:\(proxyPort)",
                                                         "--cacert", path("fwctl-ca.pem"), "-o", out, "-w", "%{http_connect}",
                                                         "https://wrongcert.example.test:\(upstreamPort)/"])
        XCTAssertEqual(r.stdout, "502", r.stderr)
        let line = try XCTUnwrap(lastLogLine(status: 502))
        XCTAssertEqual(line["mode"] as? String, "mitm")
        XCTAssertEqual(upstreamRequests().count, 0)
    }

    /// A closing TLS connection waits briefly for the peer's close_notify: NIOSSL holds the
    /// connection's handler, buffers and TLS state until that timer fires, even after the
    /// socket is gone, so under tunnel churn NIOSSL's default of 5 s kept more dead
    /// connections in memory than live ones (BENCHMARKS.md, Soak).
    func testClosingTLSConnectionsAreNotKeptForSeconds() throws {
        let termination = try XCTUnwrap(bed.proxy?.services.termination)
        XCTAssertLessThanOrEqual(termination.upstreamContext.configuration.shutdownTimeout, .seconds(1))
        XCTAssertLessThanOrEqual(try termination.serverContext(for: "api.example.test").configuration.shutdownTimeout, .seconds(1))
    }

    /// Tunnels that end without a request still leave one access-log line each: the proxy
    /// made an upstream connection (and TLS handshake) for every one of them.
    func testTunnelsWithoutARequestAreLogged() throws {
        XCTAssertEqual(try bed.bareConnect(host), "HTTP/1.1 200 Connection established")
        let bare = try XCTUnwrap(bed.logLine(reasonContaining: "before sending anything"), "\(bed.logLines())")
        XCTAssertEqual(bare["mode"] as? String, "mitm")
        XCTAssertEqual(bare["method"] as? String, "CONNECT")
        XCTAssertNotEqual(bare["client"] as? String, "-")
        // TLS completes, then the client leaves without a request.
        let r = try FWTestSupport.run(try tool("openssl"), ["s_client", "-proxy", "127.0.0.1:\(proxyPort)", "-connect", host,
                                                            "-servername", "api.example.test", "-CAfile", path("fwctl-ca.pem")], input: "")
        XCTAssertTrue(r.stdout.contains("Verify return code: 0"), r.stdout)
        let quiet = try XCTUnwrap(bed.logLine(reasonContaining: "before sending a request"), "\(bed.logLines())")
        XCTAssertEqual(quiet["mode"] as? String, "mitm")
        XCTAssertEqual(quiet["status"] as? Int, 200)
        // A client that rejects fwctl's certificate: the failure is the reason.
        _ = try FWTestSupport.run(try tool("curl"), ["-sS", "--max-time", "10", "--proxy", "http://127.0.0.1:\(proxyPort)",
                                                     "https://\(host)/"])
        let failed = try XCTUnwrap(bed.logLine(reasonContaining: "failed before a request"), "\(bed.logLines())")
        XCTAssertEqual(failed["mode"] as? String, "mitm")
        XCTAssertEqual(bed.logLines().count, 3, "\(bed.logLines())")
        XCTAssertEqual(upstreamRequests().count, 0)
    }

    /// Domain fronting on a terminated tunnel: the connection is closed before the
    /// handshake, and the reason logged.
    func testSNIMustEqualTheConnectTarget() throws {
        let r = try FWTestSupport.run(try tool("openssl"), ["s_client", "-proxy", "127.0.0.1:\(proxyPort)", "-connect", host,
                                                            "-servername", "evil.example.test", "-CAfile", path("fwctl-ca.pem")], input: "")
        XCTAssertTrue(r.stdout.contains("no peer certificate available"), "the handshake must not complete:\n\(r.stdout)")
        let line = try XCTUnwrap(lastLogLine(status: 421))
        XCTAssertEqual(line["mode"] as? String, "mitm")
        XCTAssertTrue((line["reason"] as? String ?? "").contains("evil.example.test"), "\(line)")
        XCTAssertEqual(upstreamRequests().count, 0)
    }
}
