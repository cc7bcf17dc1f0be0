import XCTest
import FWPolicy
import FWResolve
import FWRuleset
@testable import FWWatch

/// The rules of a refresh, without a kernel or a DNS server: TTL clamping, the grace of
/// an address that left the answer, serve-stale, NXDOMAIN.
final class RefreshRulesTests: XCTestCase {
    static let toml = """
        version = 1
        [dns]
        servers = ["192.0.2.53"]
        min_ttl = 10
        max_ttl = 100

        [[allow]]
        host = "api.example.test"

        [[allow]]
        host = "cdn.example.test"
        """

    func watched() throws -> WatchedPolicy {
        let loaded = try PolicyReader.parse(text: Self.toml, file: "watch.toml", baseDirectory: "/tmp")
        let ruleset = Compiler.compile(CompileInput(policy: loaded.policy, dnsServers: loaded.policy.dns.servers!, hostAddresses: nil))
        return WatchedPolicy(policy: loaded.policy, sha256: "x", servers: loaded.policy.dns.servers!, ruleset: ruleset)
    }

    let a1 = IPAddress("192.0.2.10")!, a2 = IPAddress("192.0.2.11")!, b6 = IPAddress("2001:db8::10")!

    func testNamesAndSetsComeFromTheCompiledRuleset() throws {
        let w = try watched()
        XCTAssertEqual(w.names, ["api.example.test", "cdn.example.test"])
        XCTAssertEqual(w.sets["api.example.test"]?[.ipv4], ["names4_tcp_443"])
        XCTAssertEqual(w.sets["api.example.test"]?[.ipv6], ["names6_tcp_443"])
        XCTAssertTrue(w.allows("API.example.test."))
        XCTAssertFalse(w.allows("secret.example.test"))
        XCTAssertFalse(w.allows("api.example.test.attacker.test"))
    }

    func testAnAnswerIsClaimedForTwoClampedTTLs() throws {
        let rules = RefreshRules(policy: try watched())
        var state = NameState(name: "api.example.test")
        let (claims, change) = rules.apply(NameResolution(name: state.name, status: .ok, addresses: [a1, b6], ttl: 3), to: &state, now: 1000)
        // TTL 3 is below min_ttl 10.
        XCTAssertEqual(state.ttl, 10)
        XCTAssertEqual(state.nextRefresh, 1010)
        XCTAssertEqual(claims.map(\.0), [a1, b6])
        XCTAssertEqual(claims.map(\.1), [1020, 1020])
        XCTAssertEqual(change?.added, [a1, b6])
        XCTAssertEqual(change?.health, .ok)

        let (_, again) = rules.apply(NameResolution(name: state.name, status: .ok, addresses: [a2], ttl: 5000), to: &state, now: 1010)
        XCTAssertEqual(state.ttl, 100, "clamped to max_ttl")
        XCTAssertEqual(again?.added, [a2])
        XCTAssertEqual(again?.removed, [a1, b6])
    }

    func testAFailureKeepsTheLastGoodAnswerUntilMaxTTLSinceConfirmed() throws {
        let rules = RefreshRules(policy: try watched())
        var state = NameState(name: "api.example.test")
        _ = rules.apply(NameResolution(name: state.name, status: .ok, addresses: [a1], ttl: 20), to: &state, now: 0)
        let timeout = NameResolution(name: state.name, status: .timeout, detail: "timeout after 2 attempts")
        let (claims, change) = rules.apply(timeout, to: &state, now: 20)
        XCTAssertEqual(state.health, .stale)
        XCTAssertEqual(change?.health, .stale)
        XCTAssertEqual(claims.map(\.0), [a1])
        XCTAssertEqual(claims.first?.1, 60, "two TTLs from now")
        XCTAssertEqual(state.addresses, [a1])

        // 90 s after the last confirmation the claim stops at max_ttl (100 s).
        let (late, _) = rules.apply(timeout, to: &state, now: 90)
        XCTAssertEqual(late.first?.1, 100)

        // Past max_ttl nothing is kept.
        let (none, gone) = rules.apply(timeout, to: &state, now: 101)
        XCTAssertTrue(none.isEmpty)
        XCTAssertEqual(state.health, .gone)
        XCTAssertEqual(gone?.removed, [a1])
    }

    func testNXDOMAINIsNotStale() throws {
        let rules = RefreshRules(policy: try watched())
        var state = NameState(name: "api.example.test")
        _ = rules.apply(NameResolution(name: state.name, status: .ok, addresses: [a1], ttl: 20), to: &state, now: 0)
        let (claims, change) = rules.apply(NameResolution(name: state.name, status: .nxdomain, detail: "NXDOMAIN"), to: &state, now: 20)
        XCTAssertTrue(claims.isEmpty, "the addresses go after their grace, not renewed")
        XCTAssertEqual(state.health, .gone)
        XCTAssertEqual(change?.removed, [a1])
    }
}

/// The book of elements: the latest claim decides an element's timeout.
final class ElementBookTests: XCTestCase {
    let k = ElementKey(set: "names4_tcp_443", address: IPAddress("192.0.2.10")!)

    func testTheLatestClaimWins() {
        var book = ElementBook()
        book.claim(k, by: "a.test", until: 200)
        book.claim(k, by: "b.test", until: 50)
        let p = book.pending(now: 10, unclaimedGrace: nil)
        XCTAssertEqual(p.count, 1)
        XCTAssertEqual(p[0].timeout, 190)
        XCTAssertFalse(p[0].exists)
        book.wrote(k, deadline: 200)
        XCTAssertTrue(book.pending(now: 20, unclaimedGrace: nil).isEmpty, "nothing to write when the deadline holds")
        // b.test renews to a time before a.test's: still a.test's deadline.
        book.claim(k, by: "b.test", until: 150)
        XCTAssertTrue(book.pending(now: 30, unclaimedGrace: nil).isEmpty)
        // a.test's answer moves the deadline.
        book.claim(k, by: "a.test", until: 300)
        XCTAssertEqual(book.pending(now: 40, unclaimedGrace: nil).first?.timeout, 260)
        XCTAssertEqual(book.pending(now: 40, unclaimedGrace: nil).first?.exists, true)
    }

    func testPermanentElementsGetTheirGraceOnlyWhenUnclaimed() {
        var book = ElementBook()
        let other = ElementKey(set: "names4_tcp_443", address: IPAddress("192.0.2.11")!)
        book.load([(k, expiresIn: nil), (other, expiresIn: nil)], now: 0)
        book.claim(k, by: "a.test", until: 100)
        XCTAssertEqual(book.pending(now: 0, unclaimedGrace: nil).map(\.key), [k], "no grace before a full round")
        let p = book.pending(now: 0, unclaimedGrace: 20)
        XCTAssertEqual(p.map(\.key), [k, other])
        XCTAssertEqual(p.map(\.timeout), [100, 20])
    }

    func testExpiredElementsAreForgotten() {
        var book = ElementBook()
        book.claim(k, by: "a.test", until: 100)
        book.wrote(k, deadline: 100)
        book.expire(now: 100)
        XCTAssertFalse(book.contains(k))
        book.claim(k, by: "a.test", until: 300)
        XCTAssertEqual(book.pending(now: 200, unclaimedGrace: nil).first?.exists, false, "gone from the kernel: added, not replaced")
    }
}
