import Foundation
import Logging
import XCTest
import FWPolicy
@testable import FWProxy
import FWTestSupport

/// Base-URL endpoints end to end: curl speaks plain HTTP to a `[[proxy.endpoint]]` listener
/// (no --proxy, no CA), fwctl forwards over verified TLS to the target (the testbed's python
/// upstream, trusted through `upstream_ca`), injecting the real key and scrubbing it from
/// responses. Loopback only. The secret is random per run and never printed.
final class EndpointTests: XCTestCase {
    var bed: ProxyTestbed!
    let secret = "sk-real-" + UUID().uuidString.lowercased()
    let placeholder = "sk-fwctl-placeholder-0001"
    /// target https://api.example.test:PORT/v1
    let prefixedPort = LoopbackPort.unused()
    /// target https://api.example.test:PORT (no prefix)
    let plainPort = LoopbackPort.unused()
    /// target https://nothere.example.test:PORT: no allow covers it
    let uncoveredPort = LoopbackPort.unused()
    /// target https://rebind.example.test:PORT: allowed, but resolves to the metadata address
    let rebindPort = LoopbackPort.unused()

    override func setUpWithError() throws {
        _ = try tool("curl")
        bed = try ProxyTestbed(names: ["api.example.test", "nothere.example.test", "rebind.example.test"], certifiedNames: ["api.example.test"])
        let up = bed.upstreamPort
        let allows = """
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            ports = [\(up)]
            methods = ["GET", "POST"]
            paths = ["/v1/*", "/echo"]
            [[allow.inject]]
            header = "x-api-key"
            placeholder = "\(placeholder)"
            secret = "env:FWCTL_TEST_KEY"
            [[allow]]
            host = "rebind.example.test"
            via = "proxy"
            ports = [\(up)]
            methods = ["GET"]
            [[allow]]
            cidr = ["127.0.0.1"]          # the upstream lives on loopback in this test
            ports = [\(up)]
            """
        let proxyKeys = """
            upstream_ca = "\(bed.path("ca.pem"))"
            max_body_bytes = 1000
            [[proxy.endpoint]]
            listen = "127.0.0.1:\(prefixedPort)"
            target = "https://api.example.test:\(up)/v1"
            [[proxy.endpoint]]
            listen = "127.0.0.1:\(plainPort)"
            target = "https://api.example.test:\(up)"
            [[proxy.endpoint]]
            listen = "127.0.0.1:\(uncoveredPort)"
            target = "https://nothere.example.test:\(up)"
            [[proxy.endpoint]]
            listen = "127.0.0.1:\(rebindPort)"
            target = "https://rebind.example.test:\(up)"
            """
        let policy = try PolicyReader.parse(text: "version = 1\n[proxy]\n\(allows)", file: "secrets.toml", baseDirectory: bed.dir.path).policy
        let secrets = try SecretStore(policy: policy, environment: ["FWCTL_TEST_KEY": secret])
        // The CONNECT path terminates api.example.test, so the proxy needs a CA; endpoints themselves never use it.
        let authority = try CertificateAuthority.initialize(caDir: bed.path("fwctl-ca"), caCert: bed.path("fwctl-ca.pem"), owner: nil).authority
        try bed.startProxy(proxyKeys: proxyKeys, allows: allows, secrets: secrets, authority: authority)
        XCTAssertEqual(bed.proxy?.endpointAddresses.map(\.port), [prefixedPort, plainPort, uncoveredPort, rebindPort])
    }

    override func tearDown() { bed?.stop() }

    func redact(_ s: String) -> String { s.replacingOccurrences(of: secret, with: "<SECRET>") }

    struct Result { var status: String; var body: String; var headers: String; var stderr: String }

    /// Plain curl to the endpoint: no proxy, no CA.
    func curl(_ port: UInt16, _ path: String, key: String? = "", extra: [String] = []) throws -> Result {
        let out = bed.path("body-\(UUID().uuidString)"), hdr = bed.path("headers-\(UUID().uuidString)")
        var args = ["-sS", "--noproxy", "*", "--max-time", "10", "-o", out, "-D", hdr, "-w", "%{http_code}"]
        if let key { args += ["-H", "x-api-key: \(key.isEmpty ? placeholder : key)"] }
        args += extra + ["http://127.0.0.1:\(port)\(path)"]
        let r = try FWTestSupport.run(try tool("curl"), args)
        return Result(status: r.stdout, body: (try? String(contentsOfFile: out, encoding: .utf8)) ?? "",
                      headers: (try? String(contentsOfFile: hdr, encoding: .utf8)) ?? "", stderr: r.stderr)
    }

    func upstreamRequests() -> [[String: Any]] { bed.upstreamRequests() }
    func lastLogLine(status: Int) -> [String: Any]? { bed.lastLogLine(status: status) }
    func header(_ name: String, in text: String) -> String? { ProxyTestbed.header(name, in: text) }
    func logLines() -> [[String: Any]] { bed.logLines() }

    // MARK: - Cases

    func testInjectedKeyReachesTheUpstreamUnderThePrefix() throws {
        let r = try curl(prefixedPort, "/models?x=1")
        XCTAssertEqual(r.status, "200", redact(r.stderr))
        XCTAssertEqual(r.body, "fwctl test upstream\n")
        let seen = try XCTUnwrap(upstreamRequests().first)
        XCTAssertEqual(seen["path"] as? String, "/v1/models?x=1", "the target's path prefix is applied")
        let headers = seen["headers"] as? [String: String] ?? [:]
        XCTAssertTrue(headers.first { $0.key.lowercased() == "x-api-key" }?.value == secret, "the upstream must see the real key")
        XCTAssertEqual(headers.first { $0.key.lowercased() == "host" }?.value, "api.example.test:\(bed.upstreamPort)",
                       "the upstream gets the target's Host, not the endpoint's")
        let line = try XCTUnwrap(lastLogLine(status: 200))
        XCTAssertEqual(line["mode"] as? String, "endpoint")
        XCTAssertEqual(line["path"] as? String, "/v1/models")
        XCTAssertFalse(try String(contentsOfFile: bed.accessLog, encoding: .utf8).contains(secret), "no secret in the access log")
    }

    func testEchoedSecretIsScrubbedUnderThePrefix() throws {
        let r = try curl(prefixedPort, "/echo")
        XCTAssertEqual(r.status, "200", redact(r.stderr))
        XCTAssertFalse(r.body.contains(secret) || r.headers.contains(secret) || r.stderr.contains(secret), "the real key reached the client")
        XCTAssertEqual(r.body, "key=\(placeholder)\n", redact(r.body))
        XCTAssertEqual(header("X-Echo-Key", in: r.headers), placeholder)
        XCTAssertEqual(upstreamRequests().first?["path"] as? String, "/v1/echo")
    }

    func testWithoutPrefixAndKeepAlive() throws {
        let out = bed.path("ka")
        let r = try FWTestSupport.run(try tool("curl"), ["-sS", "--noproxy", "*", "--max-time", "10", "-H", "x-api-key: \(placeholder)",
                                                         "-w", "%{http_code} %{num_connects}\\n",
                                                         "-o", out, "http://127.0.0.1:\(plainPort)/echo",
                                                         "-o", out, "http://127.0.0.1:\(plainPort)/v1/models"])
        XCTAssertEqual(r.stdout, "200 1\n200 0\n", redact(r.stderr))
        XCTAssertEqual(upstreamRequests().map { $0["path"] as? String }, ["/echo", "/v1/models"])
    }

    func testRefusals() throws {
        let cases: [(name: String, port: UInt16, path: String, key: String?, extra: [String], status: String, reason: String)] = [
            ("wrong key", prefixedPort, "/models", "sk-something-else", [], "403", "placeholder"),
            ("missing key", prefixedPort, "/models", nil, [], "403", "missing"),
            ("path", plainPort, "/admin", "", [], "403", "path"),
            ("method", prefixedPort, "/models", "", ["-X", "DELETE"], "403", "method"),
            ("body", prefixedPort, "/messages", "", ["--data-binary", String(repeating: "x", count: 2000)], "413", "max_body_bytes"),
            ("uncovered target", uncoveredPort, "/v1/models", "", [], "403", "not allowed"),
            ("dial-time guard", rebindPort, "/", "", [], "403", "169.254.169.254"),
            // The gate runs before the dial: a refused request never reaches the dial, so it
            // is told its own reason, not the upstream's.
            ("method before the dial", rebindPort, "/", "", ["-X", "POST"], "403", "method \"POST\""),
        ]
        for c in cases {
            let r = try curl(c.port, c.path, key: c.key, extra: c.extra)
            XCTAssertEqual(r.status, c.status, "\(c.name): \(redact(r.stderr)) \(redact(r.body))")
            let reason = header("X-Fwctl-Reason", in: r.headers) ?? ""
            XCTAssertTrue(reason.contains(c.reason), "\(c.name): \(redact(reason))")
            XCTAssertTrue(r.body.hasPrefix("fwctl: "), "\(c.name): \(redact(r.body))")
            let line = try XCTUnwrap(lastLogLine(status: Int(c.status)!), c.name)
            XCTAssertEqual(line["mode"] as? String, "endpoint", c.name)
        }
        XCTAssertEqual(upstreamRequests().count, 0, "no refused request reaches the upstream")
    }

    /// The client's Host names the endpoint; a Host naming some other site changes nothing.
    func testClientHostIsReplaced() throws {
        let r = try curl(plainPort, "/echo", extra: ["-H", "Host: evil.example.test"])
        XCTAssertEqual(r.status, "200", redact(r.stderr))
        let headers = upstreamRequests().first?["headers"] as? [String: String] ?? [:]
        XCTAssertEqual(headers.first { $0.key.lowercased() == "host" }?.value, "api.example.test:\(bed.upstreamPort)")
    }

    /// A policy whose only proxy entry splices needs no CA for its endpoints: the proxy
    /// starts without one, and the endpoint still forwards over verified TLS.
    func testEndpointWithoutCA() throws {
        let port = LoopbackPort.unused()
        let policy = try PolicyReader.parse(text: """
            version = 1
            [dns]
            servers = ["\(bed.dns.endpoint)"]
            timeout_ms = 500
            [proxy]
            listen = "127.0.0.1:\(LoopbackPort.unused())"
            ca_dir = "\(bed.path("no-such-ca"))"
            upstream_ca = "\(bed.path("ca.pem"))"
            [[proxy.endpoint]]
            listen = "127.0.0.1:\(port)"
            target = "https://api.example.test:\(bed.upstreamPort)"
            [[allow]]
            host = "api.example.test"
            via = "proxy"
            ports = [\(bed.upstreamPort)]
            [[allow]]
            cidr = ["127.0.0.1"]
            ports = [\(bed.upstreamPort)]
            """, file: "noca.toml", baseDirectory: bed.dir.path).policy
        let server = try ProxyServer(policy: policy, dnsServers: policy.dns.servers!, logger: Logger(label: "test"), threads: 1,
                                     secrets: try SecretStore(policy: policy, environment: [:]))
        defer { server.stop() }
        try server.start()
        let r = try curl(port, "/echo", key: "not-a-secret")
        XCTAssertEqual(r.status, "200", r.stderr)
        XCTAssertEqual(r.body, "key=not-a-secret\n")
        XCTAssertFalse(FileManager.default.fileExists(atPath: bed.path("no-such-ca")))
    }
}
