import XCTest
import FWPolicy
import FWRender
import FWRuleset

/// `dns.filter = true`: every query redirected to the forwarder, only its marked queries
/// reach the resolvers.
final class DNSFilterCompileTests: XCTestCase {
    static func compile(filter: Bool) throws -> Ruleset {
        let policy = try PolicyReader.parse(text: """
            version = 1
            [dns]
            servers = ["192.0.2.53"]
            filter = \(filter)
            filter_port = 5300
            [[allow]]
            host = "a.example.test"
            """, file: "test.toml", baseDirectory: "/").policy
        return Compiler.compile(CompileInput(policy: policy, dnsServers: policy.dns.servers!, hostAddresses: [:]))
    }

    static func rules(_ c: Chain?) -> [String] { (c?.rules ?? []).map(NftRenderer().rule) }

    func testDNSRulesNeedTheMarkAndTheForwarderIsReachable() throws {
        let output = try Self.compile(filter: true).table.chains[0]
        let rules = Self.rules(output)
        let dns = rules.filter { $0.contains("dport 53") || $0.contains("dport 5300") }
        XCTAssertEqual(dns, [
            "meta mark 0x46574453 ip daddr 192.0.2.53 tcp dport 53 counter accept",
            "meta mark 0x46574453 ip daddr 192.0.2.53 udp dport 53 counter accept",
            "udp dport 53 counter drop",
            "tcp dport 53 counter drop",
            "ip daddr 127.0.0.1 tcp dport 5300 counter accept",
            "ip daddr 127.0.0.1 udp dport 5300 counter accept",
            "ip6 daddr ::1 tcp dport 5300 counter accept",
            "ip6 daddr ::1 udp dport 5300 counter accept",
        ])
        XCTAssertEqual(DNSSettings.filterMark, 0x4657_4453)
        // DNS is decided before `established`: an old flow to port 53 must not go on.
        let established = try XCTUnwrap(rules.firstIndex { $0.hasPrefix("ct state") })
        XCTAssertLessThan(try XCTUnwrap(rules.firstIndex(of: "udp dport 53 counter drop")), established)
    }

    func testTheFiltersPortTakesOnlyTheForwardersSocket() throws {
        let guardChain = try XCTUnwrap(Self.compile(filter: true).table.chains.first { $0.name == "dns_filter_in" })
        XCTAssertEqual(guardChain.base, Chain.Base(type: .filter, hook: .input, priority: -10, policy: .accept))
        XCTAssertEqual(Self.rules(guardChain), [
            "udp dport 5300 socket mark 0x46574453 accept",
            "udp dport 5300 counter drop",
            "tcp dport 5300 ct state new socket mark 0x46574453 accept",
            "tcp dport 5300 ct state new counter drop",
        ])
    }

    /// fwctl's marked flows go to a conntrack zone of their own before conntrack sees them,
    /// so no sandbox query can share their tuple (see DNSSettings.filterZone).
    func testMarkedFlowsGetAZoneOfTheirOwn() throws {
        let r = try Self.compile(filter: true)
        let zone = try XCTUnwrap(r.table.chains.first { $0.name == "dns_zone" })
        XCTAssertEqual(zone.base, Chain.Base(type: .filter, hook: .output, priority: -300, policy: .accept))
        XCTAssertEqual(zone.rules.map(NftRenderer().rule), ["meta mark 0x46574453 ct original zone set 18007"])
        XCTAssertNil(try Self.compile(filter: false).table.chains.first { $0.name == "dns_zone" })
    }

    func testNatChainRedirectsEveryUnmarkedQuery() throws {
        let r = try Self.compile(filter: true)
        XCTAssertEqual(r.table.chains.map(\.name), ["output", "input", "dns_filter_in", "dns_zone", "dns_filter"])
        let nat = try XCTUnwrap(r.table.chains.last)
        // Before Docker's nat chain for its embedded resolver (-100): see DNSFilterLayer.natPriority.
        XCTAssertEqual(nat.base, Chain.Base(type: .nat, hook: .output, priority: -110, policy: .accept))
        XCTAssertEqual(Self.rules(nat), [
            "meta mark 0x46574453 accept",
            "udp dport 53 counter redirect to :5300",
            "tcp dport 53 counter redirect to :5300",
        ])
        XCTAssertTrue(r.notes.contains { $0.hasPrefix("dns filter: ") && $0.contains(":5300") }, "\(r.notes)")
        let iptables = IptablesRenderer().parts(r)
        XCTAssertTrue(iptables.ipv4.contains("-A fwctl-dns_filter -p udp -m udp --dport 53 -j REDIRECT --to-ports 5300"), iptables.ipv4)
        XCTAssertTrue(iptables.ipv6.contains("-A fwctl-dns_filter -m mark --mark 0x46574453 -j ACCEPT"), iptables.ipv6)
    }

    func testWithoutTheFilterNothingChanges() throws {
        let r = try Self.compile(filter: false)
        XCTAssertEqual(r.table.chains.map(\.name), ["output", "input"])
        XCTAssertFalse(NftRenderer().render(r).contains("mark"))
        XCTAssertFalse(r.notes.contains { $0.hasPrefix("dns filter") })
    }

    /// Lockdown has no forwarder to send queries to: its DNS rules stay unmarked.
    func testLockdownKeepsUnmarkedDNS() {
        let r = Compiler.lockdown(table: "fwctl", reason: "test", dnsServers: [SocketEndpoint(address: IPAddress("192.0.2.53")!, port: 53)])
        XCTAssertTrue(Self.rules(r.table.chains.first).contains("ip daddr 192.0.2.53 udp dport 53 counter accept"))
    }
}
