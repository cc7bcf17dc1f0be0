import Foundation
import XCTest
@testable import FWPolicy

/// One case per validation rule: the exact line a user sees, location included.
final class ValidationTests: XCTestCase {
    /// Every diagnostic for `text`, as printed.
    func diagnose(_ text: String, base: String = "/nonexistent") -> [String] {
        do {
            let loaded = try PolicyReader.parse(text: text, file: "p.toml", baseDirectory: base)
            return loaded.warnings.map(\.description)
        } catch {
            return error.diagnostics.map(\.description)
        }
    }

    func assertDiagnostics(_ text: String, _ expected: [String], base: String = "/nonexistent", file: StaticString = #filePath, line: UInt = #line) {
        XCTAssertEqual(diagnose(text, base: base), expected, file: file, line: line)
    }

    func testAValidPolicyHasNoDiagnostics() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "a.test"
        """, [])
    }

    func testSyntaxErrorHasLineAndColumn() {
        let d = diagnose("version = 1\n[[allow]]\nhost = \"a.test\n")
        XCTAssertEqual(d.count, 1)
        XCTAssertTrue(d[0].hasPrefix("p.toml:3:"), d[0])
        XCTAssertTrue(d[0].contains("TOML syntax error"), d[0])
    }

    func testMissingVersion() {
        assertDiagnostics("[[allow]]\nhost = \"a.test\"\n", ["p.toml: version: missing; a policy starts with version = 1"])
    }

    func testWrongVersion() {
        assertDiagnostics("version = 2\n", [
            "p.toml:1:11: version: version 2 is not supported (allowed: 1)",
            "p.toml: warning: (top level): no [[allow]] entries: only loopback, replies and DNS will be allowed",
        ])
    }

    func testWrongTypes() {
        assertDiagnostics("""
        version = "1"
        [firewall]
        log_denied = "yes"
        [dns]
        attempts = 2.5
        [[allow]]
        host = 42
        """, [
            "p.toml:1:11: version: expected an integer, found string \"1\"",
            "p.toml:3:14: firewall.log_denied: expected true or false, found string \"yes\"",
            "p.toml:5:12: dns.attempts: expected an integer, found float 2.5",
            "p.toml:7:8: allow[0].host: expected a string, found integer 42",
        ])
    }

    func testUnknownKeysAreErrorsWithAHint() {
        assertDiagnostics("""
        version = 1
        [firewall]
        egres = "drop"
        [[allow]]
        host = "a.test"
        port = [443]
        """, [
            "p.toml:3:1: firewall.egres: unknown key; did you mean \"egress\"? (allowed here: table, egress, inbound, log_denied, host_network, icmp)",
            "p.toml:6:1: allow[0].port: unknown key; did you mean \"ports\"? (allowed here: host, cidr, github_meta, ports, protocol, via, optional, methods, paths, inject)",
        ])
    }

    func testEnumValues() {
        assertDiagnostics("""
        version = 1
        [firewall]
        egress = "accept"
        [[allow]]
        host = "a.test"
        protocol = "icmp"
        """, [
            "p.toml:3:10: firewall.egress: \"accept\" is not allowed (allowed: \"reject\", \"drop\")",
            "p.toml:6:12: allow[0].protocol: \"icmp\" is not allowed (allowed: \"tcp\", \"udp\")",
        ])
    }

    func testExactlyOneTarget() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        ports = [443]
        [[allow]]
        host = "a.test"
        cidr = ["192.0.2.0/24"]
        """, [
            "p.toml:2:1: allow[0]: needs exactly one of host, cidr, github_meta (none given)",
            "p.toml:6:1: allow[1].cidr: needs exactly one of host, cidr, github_meta (host and cidr given)",
        ])
    }

    func testPortsOutOfRangeAndInverted() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "a.test"
        ports = [0, 65536, "9000-8000", "ssh", 443]
        """, [
            "p.toml:4:10: allow[0].ports[0]: port 0 is out of range (allowed: 1-65535)",
            "p.toml:4:13: allow[0].ports[1]: port 65536 is out of range (allowed: 1-65535)",
            "p.toml:4:20: allow[0].ports[2]: port range \"9000-8000\" is inverted (the first port must not exceed the second)",
            "p.toml:4:33: allow[0].ports[3]: \"ssh\" is not a port (allowed: a number 1-65535 or a range \"8000-8100\")",
        ])
    }

    func testEmptyPorts() {
        assertDiagnostics("version = 1\n[[allow]]\nhost = \"a.test\"\nports = []\n", [
            "p.toml:4:9: allow[0].ports: must not be empty",
        ])
    }

    func testBadHostNames() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "bad_name.test"
        [[allow]]
        host = "192.0.2.1"
        """, [
            "p.toml:3:8: allow[0].host: \"bad_name.test\" is not a valid host name (label \"bad_name\": allowed are letters, digits and inner hyphens, 1-63 characters)",
            "p.toml:5:8: allow[1].host: \"192.0.2.1\" is an IP address, not a host name (use cidr = [\"192.0.2.1\"] instead)",
        ])
    }

    func testBadCIDRs() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        cidr = ["192.0.2.0/24",
                "10.0.0.0/33", "10.1.2.3/8", "2001:db8::1/32", "nonsense"]
        """, [
            "p.toml:4:9: allow[0].cidr[1]: \"10.0.0.0/33\" is not a valid CIDR (prefix 33 > 32)",
            "p.toml:4:24: allow[0].cidr[2]: \"10.1.2.3/8\" has host bits set; did you mean \"10.0.0.0/8\"?",
            "p.toml:4:38: allow[0].cidr[3]: \"2001:db8::1/32\" has host bits set; did you mean \"2001:db8::/32\"?",
            "p.toml:4:56: allow[0].cidr[4]: \"nonsense\" is not a valid CIDR (not an IPv4 or IPv6 address)",
        ])
    }

    func testCIDRMustBeAnArray() {
        assertDiagnostics("version = 1\n[[allow]]\ncidr = \"192.0.2.0/24\"\n", [
            "p.toml:3:8: allow[0].cidr: expected an array, found string \"192.0.2.0/24\"",
            "p.toml:3:8: allow[0].cidr: write cidr = [\"192.0.2.0/24\"]",
        ])
    }

    func testWildcardNeedsProxy() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "*.example.test"
        """, [
            "p.toml:3:8: allow[0].host: wildcard \"*.example.test\" needs via = \"proxy\" (the kernel cannot match names; only the proxy can)",
        ])
    }

    func testMethodsPathsInjectNeedProxy() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "a.test"
        methods = ["GET"]
        paths = ["/v1/*"]
        [[allow.inject]]
        header = "x-api-key"
        placeholder = "placeholder-123"
        secret = "env:KEY"
        """, [
            "p.toml:4:1: allow[0].methods: methods needs via = \"proxy\" (only the proxy sees methods, paths and headers)",
            "p.toml:5:1: allow[0].paths: paths needs via = \"proxy\" (only the proxy sees methods, paths and headers)",
            "p.toml:6:1: allow[0].inject: inject needs via = \"proxy\" (only the proxy sees methods, paths and headers)",
        ])
    }

    func testProxyWithoutProxySection() {
        assertDiagnostics("""
        version = 1
        [[allow]]
        host = "a.test"
        via = "proxy"
        """, [
            "p.toml:4:7: allow[0].via: via = \"proxy\" needs a [proxy] section",
        ])
    }

    func testProxyNeedsHostAndTCP() {
        assertDiagnostics("""
        version = 1
        [proxy]
        [[allow]]
        cidr = ["192.0.2.0/24"]
        via = "proxy"
        [[allow]]
        host = "a.test"
        via = "proxy"
        protocol = "udp"
        """, [
            "p.toml:5:7: allow[0].via: via = \"proxy\" needs host (the proxy allows by name, not by address)",
            "p.toml:9:12: allow[1].protocol: via = \"proxy\" works for tcp only (the proxy speaks HTTP)",
        ])
    }

    func testProxyRuleValues() {
        assertDiagnostics("""
        version = 1
        [proxy]
        [[allow]]
        host = "*.a.test"
        via = "proxy"
        methods = ["FETCH"]
        paths = ["v1/messages"]
        [[allow.inject]]
        header = "x api key"
        placeholder = "short"
        secret = "sk-live-123"
        format = "Bearer"
        """, [
            "p.toml:6:12: allow[0].methods[0]: string \"FETCH\" is not an HTTP method (allowed: GET, HEAD, POST, PUT, PATCH, DELETE, OPTIONS, CONNECT, TRACE)",
            "p.toml:7:10: allow[0].paths[0]: string \"v1/messages\" is not a path glob (allowed: starting with \"/\", \"*\" as wildcard, no query, spaces or control characters)",
            "p.toml:9:10: allow[0].inject[0].header: \"x api key\" is not a valid header name",
            "p.toml:10:15: allow[0].inject[0].placeholder: must be at least 8 visible ASCII characters with no spaces, so it cannot be mistaken for a real value",
            "p.toml:11:10: allow[0].inject[0].secret: must be \"env:NAME\" or \"file:/absolute/path\" (the value is not shown, in case it is a secret)",
            "p.toml:12:10: allow[0].inject[0].format: \"Bearer\" must contain \"{}\" exactly once (e.g. \"Bearer {}\")",
        ])
    }

    func testBadListenAndServers() {
        assertDiagnostics("""
        version = 1
        [dns]
        servers = ["127.0.0.11", "dns.test", "127.0.0.1:99999"]
        [proxy]
        listen = "127.0.0.1"
        [[proxy.endpoint]]
        listen = "localhost:3129"
        target = "ftp://api.test"
        """, [
            "p.toml:3:26: dns.servers[1]: \"dns.test\" is not a valid server address (allowed: \"ADDR\" or \"ADDR:PORT\" such as \"127.0.0.11\", \"[2001:db8::53]:5353\")",
            "p.toml:3:38: dns.servers[2]: \"127.0.0.1:99999\" has an invalid port (allowed: 1-65535)",
            "p.toml:5:10: proxy.listen: \"127.0.0.1\" is not a valid listen address (allowed: \"ADDR:PORT\" such as \"127.0.0.1:3128\" or \"[::1]:3128\")",
            "p.toml:7:10: proxy.endpoint[0].listen: \"localhost:3129\" is not a valid listen address (allowed: \"ADDR:PORT\" such as \"127.0.0.1:3128\" or \"[::1]:3128\")",
            "p.toml:8:10: proxy.endpoint[0].target: \"ftp://api.test\" is not a valid target (allowed: \"https://HOST[:PORT][/PATH]\", e.g. \"https://api.anthropic.com\")",
            "p.toml: warning: (top level): no [[allow]] entries: only loopback, replies and DNS will be allowed",
        ])
    }

    func testInvalidTableName() {
        assertDiagnostics("version = 1\n[firewall]\ntable = \"fw ctl\"\n[[allow]]\nhost = \"a.test\"\n", [
            "p.toml:3:9: firewall.table: \"fw ctl\" is not a valid table name (allowed: a letter, then letters, digits or _; at most 27 characters)",
        ])
    }

    func testNumericRanges() {
        assertDiagnostics("""
        version = 1
        [dns]
        timeout_ms = 0
        min_ttl = 600
        max_ttl = 60
        [[allow]]
        host = "a.test"
        """, [
            "p.toml:3:14: dns.timeout_ms: 0 is out of range (allowed: 1-60000)",
            "p.toml:4:11: dns.min_ttl: min_ttl 600 is greater than max_ttl 60",
        ])
    }

    func testDuplicatesAreWarnings() throws {
        let text = """
        version = 1
        [dns]
        servers = ["127.0.0.11", "127.0.0.11:53"]
        [[allow]]
        host = "a.test"
        [[allow]]
        host = "A.test."
        ports = [443, 443]
        [[allow]]
        cidr = ["192.0.2.0/24"]
        ports = [80, "80-90"]
        [[allow]]
        cidr = ["192.0.2.0/24"]
        """
        assertDiagnostics(text, [
            "p.toml:3:26: warning: dns.servers[1]: 127.0.0.11:53 is listed twice",
            "p.toml:7:1: warning: allow[1].host: \"a.test\" is also allowed by allow[0]; the ports of both apply",
            "p.toml:8:15: warning: allow[1].ports[1]: port 443 is listed twice",
            "p.toml:11:1: warning: allow[2].ports: port ranges overlap; they are merged to 80-90",
            "p.toml:13:9: warning: allow[3].cidr[0]: 192.0.2.0/24 is also listed by allow[2]",
        ])
        // Warnings do not make the policy invalid.
        XCTAssertNoThrow(try PolicyReader.parse(text: text, file: "p.toml", baseDirectory: "/"))
    }

    func testAllErrorsAtOnceInFileOrder() {
        let d = diagnose("""
        version = 1
        [[allow]]
        host = "*.x.test"
        [[allow]]
        cidr = ["10.0.0.0/33"]
        ports = [70000]
        """)
        XCTAssertEqual(d.count, 3)
        XCTAssertEqual(d.map { $0.split(separator: ":")[1] }, ["3", "5", "6"])
    }

    func testGitHubMeta() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("fwctl-meta-\(getpid())")
        try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: dir) }
        try #"{"web": ["192.0.2.0/25", "2001:db8::/33"], "api": ["192.0.2.128/25"], "git": ["2001:db8:8000::/33", "198.51.100.1/32"], "hooks": ["203.0.113.0/24"]}"#
            .write(to: dir.appendingPathComponent("meta.json"), atomically: true, encoding: .utf8)
        try #"{"web": ["192.0.2.0/24"]}"#.write(to: dir.appendingPathComponent("partial.json"), atomically: true, encoding: .utf8)

        let loaded = try PolicyReader.parse(text: "version = 1\n[[allow]]\ngithub_meta = \"meta.json\"\n", file: "p.toml", baseDirectory: dir.path)
        XCTAssertEqual(loaded.policy.allows[0].cidrs.map(\.description), ["192.0.2.0/24", "198.51.100.1", "2001:db8::/32"])

        assertDiagnostics("version = 1\n[[allow]]\ngithub_meta = \"partial.json\"\n", [
            "p.toml:3:15: allow[0].github_meta: \"partial.json\" has no \"api\", \"git\" key (expected GitHub's /meta document with web, api and git ranges)",
        ], base: dir.path)
        let missing = diagnose("version = 1\n[[allow]]\ngithub_meta = \"none.json\"\n", base: dir.path)
        XCTAssertEqual(missing.count, 1)
        XCTAssertTrue(missing[0].hasPrefix("p.toml:3:15: allow[0].github_meta: cannot read \"none.json\""), missing[0])
    }

    func testMissingFileIsOneLine() {
        XCTAssertThrowsError(try PolicyReader.load(path: "/nonexistent/policy.toml")) { e in
            XCTAssertEqual((e as? PolicyError)?.description, "/nonexistent/policy.toml: cannot read: no such file")
        }
    }

    func testDecodedValues() throws {
        let p = try PolicyReader.parse(text: """
        version = 1
        [firewall]
        egress = "drop"
        inbound = "open"
        [dns]
        servers = ["[2001:db8::53]:5353"]
        [proxy]
        user = 1500
        [[proxy.endpoint]]
        listen = "127.0.0.1:3129"
        target = "https://api.example.test"
        env = "EXAMPLE_BASE_URL"
        [[allow]]
        host = "a.test"
        ports = [22, "8000-8100"]
        protocol = "udp"
        optional = true
        [[allow]]
        host = "*.b.test"
        via = "proxy"
        [[allow.inject]]
        header = "Authorization"
        placeholder = "placeholder-123"
        secret = "file:/run/secrets/key"
        format = "Bearer {}"
        """, file: "p.toml", baseDirectory: "/").policy
        XCTAssertEqual(p.firewall.egress, .drop)
        XCTAssertEqual(p.firewall.inbound, .open)
        XCTAssertEqual(p.dns.servers?.map(\.description), ["[2001:db8::53]:5353"])
        XCTAssertEqual(p.proxy?.user, .uid(1500))
        XCTAssertEqual(p.proxy?.endpoints.first?.target.description, "https://api.example.test")
        XCTAssertEqual(p.proxy?.endpoints.first?.env, "EXAMPLE_BASE_URL")
        XCTAssertEqual(p.allows[0].ports.map(\.description), ["22", "8000-8100"])
        XCTAssertEqual(p.allows[0].proto, .udp)
        XCTAssertTrue(p.isOptional("a.test"))
        XCTAssertEqual(p.allows[1].inject.first?.header, "authorization")
        XCTAssertEqual(p.allows[1].inject.first?.secret.description, "file:/run/secrets/key")
        XCTAssertEqual(p.directHostNames, ["a.test"])
    }

    func testBundledPoliciesCheck() throws {
        for name in ["claude-code.toml", "strict.toml"] {
            let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
                .deletingLastPathComponent().appendingPathComponent("policies/\(name)").path
            let loaded = try PolicyReader.load(path: path)
            XCTAssertEqual(loaded.warnings, [], name)
        }
    }
}
