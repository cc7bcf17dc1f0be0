import Foundation
import XCTest
import FWPolicy
import FWTestSupport

/// The fwctl executable as a user runs it: output, diagnostics and exit codes.
final class CLITests: XCTestCase {
    var dir: URL!

    override func setUpWithError() throws {
        dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-cli-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    }

    override func tearDown() { try? FileManager.default.removeItem(at: dir) }

    func write(_ name: String, _ text: String) throws -> String {
        let url = dir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    func fwctl(_ args: String...) throws -> ProcessResult { try FWTestSupport.run(Paths.fwctl, args) }

    func testCheckValidPolicy() throws {
        let r = try fwctl("check", Paths.policies("claude-code.toml"))
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stdout.hasSuffix("claude-code.toml: ok (9 allow entries: 8 hosts, 36 prefixes, 0 via proxy)\n"), r.stdout)
        XCTAssertEqual(r.stderr, "")
    }

    func testCheckReportsEveryErrorAndExits2() throws {
        let p = try write("bad.toml", "version = 1\n[[allow]]\ncidr = [\"10.0.0.0/33\"]\nports = [0]\n")
        let r = try fwctl("check", p)
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stdout, "")
        XCTAssertEqual(r.stderr, """
        \(p):3:9: allow[0].cidr[0]: "10.0.0.0/33" is not a valid CIDR (prefix 33 > 32)
        \(p):4:10: allow[0].ports[0]: port 0 is out of range (allowed: 1-65535)
        \(p): 2 errors

        """)
    }

    func testCheckJSON() throws {
        let p = try write("bad.toml", "version = 1\n[[allow]]\nhost = \"*.a.test\"\n")
        let r = try fwctl("check", "--json", p)
        XCTAssertEqual(r.status, 2)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(r.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["ok"] as? Bool, false)
        let d = try XCTUnwrap((obj["diagnostics"] as? [[String: Any]])?.first)
        XCTAssertEqual(d["line"] as? Int, 3)
        XCTAssertEqual(d["column"] as? Int, 8)
        XCTAssertEqual(d["path"] as? String, "allow[0].host")
        XCTAssertEqual(d["severity"] as? String, "error")
    }

    func testMissingFileIsOneLineExit2() throws {
        let r = try fwctl("check", "/nonexistent/policy.toml")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "/nonexistent/policy.toml: cannot read: no such file\n/nonexistent/policy.toml: 1 error\n")
        let c = try fwctl("compile", "--offline", "/nonexistent/policy.toml")
        XCTAssertEqual(c.status, 2)
        XCTAssertEqual(c.stderr, "/nonexistent/policy.toml: cannot read: no such file\n")
    }

    func testUsageErrorsExit2() throws {
        XCTAssertEqual(try fwctl("check").status, 2)
        XCTAssertEqual(try fwctl("compile", "--format", "pf", Paths.policies("strict.toml")).status, 2)
        XCTAssertEqual(try fwctl("frobnicate").status, 2)
        XCTAssertEqual(try fwctl("--help").status, 0)
    }

    func testCompileOfflineMatchesGolden() throws {
        let golden = Paths.packageRoot.appendingPathComponent("Tests/FWRulesetTests/Golden")
        for format in ["nft", "iptables", "json"] {
            let r = try fwctl("compile", "--offline", "--proxy-uid", "\(GoldenCases.proxyUID)", "--format", format, Paths.policies("strict.toml"))
            XCTAssertEqual(r.status, 0, r.stderr)
            XCTAssertEqual(r.stdout, try String(contentsOf: golden.appendingPathComponent("strict.\(format).ref"), encoding: .utf8), format)
        }
    }

    // MARK: - The kernel commands' own errors

    /// Without CAP_NET_ADMIN: one clear line and exit 5, before any DNS or netlink work.
    func testKernelCommandsWithoutPrivilegeExit5() throws {
        guard getuid() == 0 else { throw XCTSkip("needs root to drop to nobody") }
        let setpriv = try tool("setpriv")
        for args in [["apply", Paths.policies("strict.toml")], ["diff", Paths.policies("strict.toml")], ["status"], ["reset"]] {
            let r = try FWTestSupport.run(setpriv, ["--reuid=65534", "--regid=65534", "--clear-groups", Paths.fwctl] + args)
            XCTAssertEqual(r.status, 5, "\(args): \(r.stderr)")
            XCTAssertEqual(r.stderr, "fwctl \(args[0]): needs root or CAP_NET_ADMIN\n")
        }
    }

    func testMissingNamespaceExits2() throws {
        let r = try fwctl("reset", "--netns", "fwctl-no-such-ns")
        XCTAssertEqual(r.status, 2)
        XCTAssertEqual(r.stderr, "fwctl reset: network namespace fwctl-no-such-ns: cannot open /run/netns/fwctl-no-such-ns: No such file or directory\n")
    }

    /// watch, up and proxy's kernel half need nftables: asked for iptables, one line and
    /// exit 2, before anything is read or changed. (apply/diff/status/reset with the
    /// iptables backend are tested in the lab: FWLabTests/IptablesBackendTests.)
    func testWatchAndUpRefuseTheIptablesBackend() throws {
        for command in ["watch", "up"] {
            let r = try fwctl(command, "/nonexistent/policy.toml", "--backend", "iptables")
            XCTAssertEqual(r.status, 2, "\(command): \(r.stderr)")
            XCTAssertEqual(r.stderr, "fwctl \(command): --backend iptables is for apply, diff, status and reset; \(command) needs nftables (--backend nft)\n")
        }
    }

    // MARK: - fwctl proxy

    func proxyPolicy(port: UInt16, inject: Bool) throws -> String {
        try write("proxy.toml", """
        version = 1
        [dns]
        servers = ["127.0.0.1:9"]
        [proxy]
        listen = "127.0.0.1:\(port)"
        [[allow]]
        host = "api.example.test"
        via = "proxy"
        \(inject ? "methods = [\"GET\"]\n[[allow.inject]]\nheader = \"x-api-key\"\nplaceholder = \"placeholder-123\"\nsecret = \"env:FWCTL_CLI_TEST_UNSET\"" : "")
        """)
    }

    /// The command runs the listener, answers refusals, and stops on SIGTERM.
    func testProxyCommandServesAndStopsOnSIGTERM() throws {
        let curl = try tool("curl")
        let port = LoopbackPort.unused()
        let proxy = try Daemon([Paths.fwctl, "proxy", try proxyPolicy(port: port, inject: false)], log: dir.appendingPathComponent("proxy.log").path)
        defer { proxy.stop() }
        for _ in 0..<100 where !proxy.output.contains("listening on") { usleep(50_000) }
        XCTAssertTrue(proxy.output.contains("fwctl proxy: listening on 127.0.0.1:\(port)"), proxy.output)
        let r = try FWTestSupport.run(curl, ["-s", "-o", "/dev/null", "-w", "%{http_connect}", "--max-time", "5",
                                            "--proxy", "http://127.0.0.1:\(port)", "https://other.example.test/"])
        XCTAssertEqual(r.stdout, "403")
        proxy.signal(SIGTERM)
        for _ in 0..<100 where proxy.isRunning { usleep(50_000) }
        XCTAssertFalse(proxy.isRunning, "SIGTERM must stop the proxy")
    }

    /// A missing secret stops start-up with one line naming the inject, exit 2.
    func testProxyWithAMissingSecretExits2() throws {
        let r = try fwctl("proxy", try proxyPolicy(port: LoopbackPort.unused(), inject: true))
        XCTAssertEqual(r.status, 2)
        XCTAssertTrue(r.stderr.hasPrefix("fwctl proxy: allow[0].inject[0]"), r.stderr)
        XCTAssertTrue(r.stderr.contains("env:FWCTL_CLI_TEST_UNSET"), r.stderr)
        XCTAssertEqual(r.stderr.split(separator: "\n").count, 1, r.stderr)
    }

    // MARK: - Against a real DNS server

    func dnsPolicy(_ server: SocketEndpoint, timeoutMs: Int = 2000, extra: String) throws -> String {
        try write("policy.toml", """
        version = 1
        [dns]
        servers = ["\(server)"]
        timeout_ms = \(timeoutMs)
        attempts = 2
        \(extra)
        """)
    }

    func labServer() throws -> DNSServer {
        try DNSServer(hosts: [
            .init("api.lab.test", ipv4: "192.0.2.10", ipv6: "2001:db8::10", ttl: 300),
            .init("edge.cdn.test", ipv4: "198.51.100.7", ttl: 600),
        ], aliases: [.init("www.lab.test", to: "edge.cdn.test", ttl: 120)])
    }

    func testResolvePrintsAddressesTTLAndChain() throws {
        let dns = try labServer()
        defer { dns.stop() }
        let p = try dnsPolicy(dns.endpoint, extra: """
        [[allow]]
        host = "api.lab.test"
        [[allow]]
        host = "www.lab.test"
        """)
        let r = try fwctl("resolve", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertEqual(r.stdout, """
        api.lab.test\tok\tttl=300\t192.0.2.10 2001:db8::10
        www.lab.test\tok\tttl=120\t198.51.100.7\tvia edge.cdn.test

        """)
        let j = try fwctl("resolve", "--json", p)
        XCTAssertEqual(j.status, 0, j.stderr)
        let obj = try XCTUnwrap(JSONSerialization.jsonObject(with: Data(j.stdout.utf8)) as? [String: Any])
        XCTAssertEqual(obj["schema"] as? String, "fwctl.resolve/1")
        let names = try XCTUnwrap(obj["names"] as? [[String: Any]])
        XCTAssertEqual(names.map { $0["name"] as? String }, ["api.lab.test", "www.lab.test"])
        XCTAssertEqual(names[1]["chain"] as? [String], ["edge.cdn.test"])
        XCTAssertEqual(names[1]["ttl"] as? Int, 120)
    }

    func testRequiredNamesThatFailExit3NamingEachOne() throws {
        let dns = try labServer()
        defer { dns.stop() }
        let p = try dnsPolicy(dns.endpoint, extra: """
        [[allow]]
        host = "api.lab.test"
        [[allow]]
        host = "missing-one.lab.test"
        [[allow]]
        host = "missing-two.lab.test"
        [[allow]]
        host = "missing-three.lab.test"
        optional = true
        """)
        for cmd in ["resolve", "compile"] {
            let r = try fwctl(cmd, p)
            XCTAssertEqual(r.status, 3, "\(cmd): \(r.stderr)")
            XCTAssertEqual(r.stderr, """
            \(p):9:8: allow[1].host: "missing-one.lab.test" did not resolve (NXDOMAIN)
            \(p):11:8: allow[2].host: "missing-two.lab.test" did not resolve (NXDOMAIN)
            \(p):13:8: warning: allow[3].host: "missing-three.lab.test" did not resolve (NXDOMAIN); optional, left out

            """, cmd)
        }
    }

    func testOptionalNameFailingIsAWarningAndLeftOut() throws {
        let dns = try labServer()
        defer { dns.stop() }
        let p = try dnsPolicy(dns.endpoint, extra: """
        [[allow]]
        host = "api.lab.test"
        [[allow]]
        host = "gone.lab.test"
        optional = true
        """)
        let r = try fwctl("compile", p)
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(r.stderr.contains("warning: allow[1].host: \"gone.lab.test\" did not resolve (NXDOMAIN); optional, left out"), r.stderr)
        XCTAssertTrue(r.stdout.contains("elements = { 192.0.2.10 }"), r.stdout)
        XCTAssertTrue(r.stdout.contains("elements = { 2001:db8::10 }"), r.stdout)
        XCTAssertTrue(r.stdout.contains("ip daddr \(dns.address) udp dport \(dns.port) counter accept"), r.stdout)
    }

    func testDeadServerTimesOutWithinTheBound() throws {
        let silent = try SilentUDPServer()
        let p = try dnsPolicy(silent.endpoint, timeoutMs: 200, extra: "[[allow]]\nhost = \"api.lab.test\"\n")
        let start = Date()
        let r = try fwctl("resolve", p)
        let elapsed = Date().timeIntervalSince(start)
        XCTAssertEqual(r.status, 3)
        XCTAssertTrue(r.stderr.contains("\"api.lab.test\" did not resolve (TIMEOUT"), r.stderr)
        // 2 attempts x 200 ms, plus process start-up; far from ldns's default of ~a minute.
        XCTAssertLessThan(elapsed, 3.0)
    }
}
