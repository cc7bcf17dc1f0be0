import XCTest
import FWPolicy
@testable import FWProxy

/// Policies for the rules, secrets and guard tests, read the way `fwctl proxy` reads them.
enum RulesFixture {
    static func policy(_ allows: String, file: StaticString = #filePath, line: UInt = #line) -> Policy {
        let text = """
        version = 1
        [proxy]
        listen = "127.0.0.1:3128"

        \(allows)
        """
        do {
            return try PolicyReader.parse(text: text, file: "test.toml", baseDirectory: "/").policy
        } catch {
            XCTFail("policy does not parse: \(error)", file: file, line: line)
            return Policy()
        }
    }

    static let standard = policy("""
        [[allow]]
        host = "api.example.test"
        via = "proxy"
        methods = ["POST", "GET"]
        paths = ["/v1/messages", "/v1/messages/*", "/v1/models*"]

        [[allow]]
        host = "*.githubusercontent.com"
        via = "proxy"

        [[allow]]
        host = "alt.example.test"
        via = "proxy"
        ports = [8443, "9000-9100"]

        [[allow]]
        cidr = ["192.0.2.0/24"]
        ports = [22]

        [[allow]]
        host = "direct.example.test"
        """)
}

final class RulesTests: XCTestCase {
    let rules = ProxyRules(policy: RulesFixture.standard)

    private func entry(_ host: String, _ port: UInt16 = 443) -> ProxyEntry? {
        if case .success(let e) = rules.entry(host: host, port: port) { return e }
        return nil
    }

    private func refusal(_ host: String, _ port: UInt16 = 443) -> Refusal? {
        if case .failure(let r) = rules.entry(host: host, port: port) { return r }
        return nil
    }

    // MARK: entry()

    func testOnlyProxyHostAllowsBecomeEntries() {
        XCTAssertEqual(rules.entries.map(\.index), [0, 1, 2])
        XCTAssertFalse(rules.entries[0].splices)
        XCTAssertTrue(rules.entries[1].splices)
        XCTAssertEqual(rules.entries[0].methods, ["POST", "GET"])
    }

    func testExactHostAllowed() {
        XCTAssertEqual(entry("api.example.test")?.index, 0)
    }

    func testWildcardMatchesStrictSubdomainsOnly() {
        XCTAssertEqual(entry("raw.githubusercontent.com")?.index, 1)
        XCTAssertEqual(entry("a.b.githubusercontent.com")?.index, 1)
        XCTAssertEqual(refusal("githubusercontent.com")?.kind, .hostNotAllowed)
        XCTAssertEqual(refusal("evilgithubusercontent.com")?.kind, .hostNotAllowed)
        XCTAssertEqual(refusal("githubusercontent.com.evil.test")?.kind, .hostNotAllowed)
    }

    func testCaseAndTrailingDotIgnored() {
        XCTAssertEqual(entry("API.Example.TEST")?.index, 0)
        XCTAssertEqual(entry("api.example.test.")?.index, 0)
        XCTAssertEqual(entry("Raw.GitHubUserContent.com.")?.index, 1)
    }

    func testIPLiteralsRefusedInEveryForm() {
        let literals: [(String, String?)] = [
            ("192.0.2.1", nil),
            ("192.0.2.1.", "192.0.2.1"),
            ("::1", nil),
            ("[::1]", "::1"),
            ("[2001:db8::1]", "2001:db8::1"),
            ("2001:DB8::1", "2001:db8::1"),
            ("::ffff:192.0.2.1", nil),
            ("[::ffff:127.0.0.1]", "::ffff:127.0.0.1"),
            ("3221225985", "192.0.2.1"),          // decimal
            ("0300.0.2.1", "192.0.2.1"),          // octal
            ("0xc0.0.2.1", "192.0.2.1"),          // hex part
            ("0xC0000201", "192.0.2.1"),          // one hex number
            ("192.0.513", "192.0.2.1"),           // three parts
            ("127.1", "127.0.0.1"),               // two parts
            ("fe80::1%eth0", "fe80::1"),          // zone id
            ("[fe80::1%25eth0]", "fe80::1"),      // zone id as URLs write it
            ("99999999999", nil),                 // numeric, overflows: still a literal
            ("host.123", nil),                    // numeric last label
        ]
        for (text, decoded) in literals {
            guard let r = refusal(text) else { XCTFail("\(text) was allowed"); continue }
            XCTAssertEqual(r.kind, .ipLiteral, text)
            XCTAssertEqual(r.status, 403, text)
            XCTAssertTrue(r.reason.contains("is an IP address"), r.reason)
            XCTAssertTrue(r.reason.contains("host names only"), r.reason)
            if let d = decoded { XCTAssertTrue(r.reason.contains("(\(d))"), r.reason) }
        }
        XCTAssertEqual(refusal("3221225985")?.reason,
                       "\"3221225985\" is an IP address (192.0.2.1); the proxy allows host names only")
    }

    func testPortNotAllowed() {
        XCTAssertEqual(entry("alt.example.test", 8443)?.index, 2)
        XCTAssertEqual(entry("alt.example.test", 9050)?.index, 2)
        let r = refusal("alt.example.test", 443)
        XCTAssertEqual(r?.kind, .portNotAllowed)
        XCTAssertEqual(r?.status, 403)
        XCTAssertEqual(r?.reason, "port 443 is not allowed for alt.example.test (allow[2] ports: 8443, 9000-9100)")
        XCTAssertEqual(refusal("api.example.test", 80)?.kind, .portNotAllowed)
    }

    func testUnknownHostRefused() {
        let r = refusal("evil.example.test")
        XCTAssertEqual(r?.kind, .hostNotAllowed)
        XCTAssertEqual(r?.status, 403)
        XCTAssertEqual(r?.reason, "host \"evil.example.test\" is not allowed (no [[allow]] with via = \"proxy\" matches it)")
        // A direct allow is the kernel's business, not the proxy's.
        XCTAssertEqual(refusal("direct.example.test")?.kind, .hostNotAllowed)
    }

    func testInvalidHostRefusedOnOneLine() {
        for bad in ["", "a b.test", "api.example.test\r\nX-Evil: 1", "*.githubusercontent.com", "a..b", "-a.test"] {
            let r = refusal(bad)
            XCTAssertEqual(r?.kind, .hostNotAllowed, bad)
            XCTAssertFalse(r?.reason.contains("\r") ?? true)
            XCTAssertFalse(r?.reason.contains("\n") ?? true)
        }
        XCTAssertEqual(refusal("api.example.test\r\nX")?.reason, "\"api.example.test\\x0D\\x0AX\" is not a valid host name")
    }

    func testMostSpecificEntryWins() {
        let p = RulesFixture.policy("""
            [[allow]]
            host = "*.example.test"
            via = "proxy"

            [[allow]]
            host = "*.api.example.test"
            via = "proxy"
            methods = ["GET"]

            [[allow]]
            host = "api.example.test"
            via = "proxy"
            paths = ["/v1/*"]
            """)
        let r = ProxyRules(policy: p)
        XCTAssertEqual(try r.entry(host: "api.example.test", port: 443).get().index, 2)
        XCTAssertEqual(try r.entry(host: "x.api.example.test", port: 443).get().index, 1)
        XCTAssertEqual(try r.entry(host: "www.example.test", port: 443).get().index, 0)
    }

    func testSplitAuthority() {
        XCTAssertTrue(ProxyRules.splitAuthority("api.example.test:443") == ("api.example.test", 443))
        XCTAssertTrue(ProxyRules.splitAuthority("api.example.test") == ("api.example.test", nil))
        XCTAssertTrue(ProxyRules.splitAuthority("[2001:db8::1]:8443") == ("[2001:db8::1]", 8443))
        XCTAssertTrue(ProxyRules.splitAuthority("[2001:db8::1]") == ("[2001:db8::1]", nil))
        XCTAssertTrue(ProxyRules.splitAuthority("2001:db8::1") == ("2001:db8::1", nil))
        XCTAssertTrue(ProxyRules.splitAuthority("a.test:99999") == ("a.test:99999", nil))
        // The host part of "[::1]:443" is still refused as a literal.
        XCTAssertEqual(refusal(ProxyRules.splitAuthority("[::1]:443").host)?.kind, .ipLiteral)
    }

    // MARK: checkIdentity

    func testSNIMustMatchConnectTarget() {
        let r = ProxyRules.checkIdentity("a.example.test", seen: "b.example.test", what: "SNI", against: "CONNECT target")
        XCTAssertEqual(r?.kind, .identityMismatch)
        XCTAssertEqual(r?.status, 421)
        XCTAssertEqual(r?.reason, "SNI \"b.example.test\" does not match the CONNECT target \"a.example.test\"")
        XCTAssertNil(ProxyRules.checkIdentity("a.example.test", seen: "A.Example.Test.", what: "SNI"))
    }

    func testMissingSNIOrHostIsMismatch() {
        XCTAssertEqual(ProxyRules.checkIdentity("a.example.test", seen: nil, what: "SNI")?.status, 421)
        XCTAssertEqual(ProxyRules.checkIdentity("a.example.test", seen: "", what: "Host")?.status, 421)
    }

    func testHostHeaderMustMatchSNI() {
        let id = "api.example.test"
        XCTAssertNil(ProxyRules.checkIdentity(id, seen: "api.example.test", what: "Host"))
        XCTAssertNil(ProxyRules.checkIdentity(id, seen: "api.example.test:443", what: "Host"))
        XCTAssertNil(ProxyRules.checkIdentity(id, seen: "API.EXAMPLE.TEST", what: "Host"))
        XCTAssertNil(ProxyRules.checkIdentity(id, seen: "api.example.test.:443", what: "Host"))
        XCTAssertNil(ProxyRules.checkIdentity("API.example.test.", seen: "api.example.test", what: "Host"))
        for other in ["other.example.test", "other.example.test:443", "OTHER.example.test.", "[::1]:443", "192.0.2.1",
                      "api.example.test:443:443", "api.example.test.evil.test", "api.example.test\r\n"] {
            let r = ProxyRules.checkIdentity(id, seen: other, what: "Host", against: "SNI")
            XCTAssertEqual(r?.kind, .identityMismatch, other)
            XCTAssertEqual(r?.status, 421, other)
        }
        XCTAssertEqual(ProxyRules.checkIdentity(id, seen: "evil.test:443", what: "Host", against: "SNI")?.reason,
                       "Host \"evil.test:443\" does not match the SNI \"api.example.test\"")
    }

    func testHostPortMustAgreeWhenGiven() {
        XCTAssertNil(ProxyRules.checkIdentity("api.example.test", seen: "api.example.test:443", what: "Host", port: 443))
        XCTAssertNil(ProxyRules.checkIdentity("api.example.test", seen: "api.example.test", what: "Host", port: 443))
        XCTAssertEqual(ProxyRules.checkIdentity("api.example.test", seen: "api.example.test:8443", what: "Host", port: 443)?.status, 421)
    }

    // MARK: checkRequest

    private var api: ProxyEntry { rules.entries[0] }

    func testMethods() {
        XCTAssertNil(rules.checkRequest(method: "POST", path: "/v1/messages", entry: api))
        XCTAssertNil(rules.checkRequest(method: "GET", path: "/v1/models", entry: api))
        let r = rules.checkRequest(method: "DELETE", path: "/v1/messages", entry: api)
        XCTAssertEqual(r?.kind, .methodNotAllowed)
        XCTAssertEqual(r?.status, 403)
        XCTAssertEqual(r?.reason, "method \"DELETE\" is not allowed for api.example.test (allow[0] methods: POST, GET)")
        // Methods are case-sensitive.
        XCTAssertEqual(rules.checkRequest(method: "post", path: "/v1/messages", entry: api)?.kind, .methodNotAllowed)
    }

    func testPathGlobs() {
        for ok in ["/v1/messages", "/v1/messages/batches", "/v1/messages/batches/abc/results",
                   "/v1/models", "/v1/models/claude", "/v1/models-list"] {
            XCTAssertNil(rules.checkRequest(method: "GET", path: ok, entry: api), ok)
        }
        for bad in ["/v1/messagesX", "/v1/message", "/v1/messages/", "/v1/complete", "/", "/v2/messages", "/V1/messages"] {
            let r = rules.checkRequest(method: "GET", path: bad, entry: api)
            // "/v1/messages/" matches "/v1/messages/*" (empty run): allowed.
            if bad == "/v1/messages/" { XCTAssertNil(r); continue }
            XCTAssertEqual(r?.kind, .pathNotAllowed, bad)
            XCTAssertEqual(r?.status, 403, bad)
        }
        XCTAssertEqual(rules.checkRequest(method: "GET", path: "/v1/complete", entry: api)?.reason,
                       "path \"/v1/complete\" is not allowed for api.example.test (allow[0] paths: /v1/messages, /v1/messages/*, /v1/models*)")
    }

    func testQueryIsNotPartOfThePath() {
        XCTAssertNil(rules.checkRequest(method: "POST", path: "/v1/messages?beta=true", entry: api))
        XCTAssertNil(rules.checkRequest(method: "POST", path: "/v1/messages?x=/../admin", entry: api))
        XCTAssertNil(rules.checkRequest(method: "POST", path: "/v1/messages#frag", entry: api))
        let r = rules.checkRequest(method: "POST", path: "/v1/other?/v1/messages", entry: api)
        XCTAssertEqual(r?.kind, .pathNotAllowed)
        // The query is not echoed (it may hold a token).
        XCTAssertFalse(r?.reason.contains("?") ?? true)
    }

    func testAbsoluteFormTargetReducedToPath() {
        XCTAssertNil(rules.checkRequest(method: "POST", path: "https://api.example.test/v1/messages?x=1", entry: api))
        XCTAssertEqual(rules.checkRequest(method: "POST", path: "http://api.example.test/admin", entry: api)?.kind, .pathNotAllowed)
        XCTAssertEqual(rules.checkRequest(method: "POST", path: "http://api.example.test", entry: api)?.kind, .pathNotAllowed)
    }

    /// Decided: never normalize; refuse what an upstream could read differently.
    func testTraversalAndEncodingRefused() {
        let refused = [
            "/v1/messages/../admin", "/v1/messages/..", "/v1/models/../../etc/passwd", "/v1/messages/./x",
            "/v1/messages/..;/admin", "/v1/messages/%2e%2e/admin", "/v1/messages/%2E%2E/admin",
            "/v1/messages/.%2e/admin", "/v1/models%2f..%2fadmin", "/v1/models%2F", "/v1/messages/%5c..",
            "/v1/messages/%252e%252e/admin", "/v1/messages/a%00", "/v1/messages\\..\\admin",
            "/v1/messages/a b", "/v1/messages/\u{e9}", "v1/messages", "*",
        ]
        for p in refused {
            let r = rules.checkRequest(method: "GET", path: p, entry: api)
            XCTAssertEqual(r?.kind, .pathNotAllowed, p)
            XCTAssertEqual(r?.status, 403, p)
        }
        XCTAssertEqual(rules.checkRequest(method: "GET", path: "/v1/messages/../admin", entry: api)?.reason,
                       "path \"/v1/messages/../admin\" is refused: it holds a \"..\" segment (paths are matched as sent, never normalized)")
        // Other escapes are matched literally, and dots inside names are fine.
        XCTAssertNil(rules.checkRequest(method: "GET", path: "/v1/messages/a%20b", entry: api))
        XCTAssertNil(rules.checkRequest(method: "GET", path: "/v1/messages/file..txt", entry: api))
        XCTAssertNil(rules.checkRequest(method: "GET", path: "/v1/messages/.well-known", entry: api))
    }

    func testNoRulesMeansAnything() {
        let any = rules.entries[1]
        XCTAssertNil(rules.checkRequest(method: "PURGE", path: "/../whatever%2f", entry: any))
    }

    func testGlobMatcher() {
        XCTAssertTrue(PathGlob.matches(glob: "*", path: "/anything/at/all"))
        XCTAssertTrue(PathGlob.matches(glob: "/a/*/c", path: "/a/b/x/c"))
        XCTAssertTrue(PathGlob.matches(glob: "/a*b*c", path: "/abbbc"))
        XCTAssertFalse(PathGlob.matches(glob: "/a*b*c", path: "/abbbcd"))
        XCTAssertTrue(PathGlob.matches(glob: "/a**", path: "/a"))
        XCTAssertFalse(PathGlob.matches(glob: "/a", path: "/a/"))
        XCTAssertFalse(PathGlob.matches(glob: "/a?", path: "/ab")) // "?" is literal
        // A hostile path does not take long.
        let long = "/" + String(repeating: "a", count: 20_000)
        XCTAssertFalse(PathGlob.matches(glob: "/*a*a*a*a*a*b", path: long))
    }

    func testRefusalDescriptionAndHeaderSafety() {
        let r = Refusal(.hostNotAllowed, "line one\r\nX-Injected: yes")
        XCTAssertEqual(r.reason, "line one  X-Injected: yes")
        XCTAssertEqual(r.description, "403 hostNotAllowed: line one  X-Injected: yes")
        XCTAssertEqual(Refusal.bodyTooLarge(limit: 10).status, 413)
        XCTAssertEqual(Refusal.upstreamFailed(host: "a.test", port: 443, detail: "connection refused").status, 502)
        XCTAssertEqual(Refusal.Kind.identityMismatch.status, 421)
    }
}
