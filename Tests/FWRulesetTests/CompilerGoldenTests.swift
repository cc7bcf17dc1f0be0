import Foundation
import XCTest
import FWPolicy
import FWRender
import FWRuleset
import FWTestSupport

/// Every renderer against committed golden files: the bundled policies compiled offline,
/// and lab policies with a fixed resolution. A mismatch writes NAME.actual beside the file.
final class CompilerGoldenTests: XCTestCase {
    typealias Case = GoldenCases.Case
    static let cases = GoldenCases.all
    static let golden = GoldenCases.golden
    static let hostNetworks = GoldenCases.hostNetworks
    static func resolution() throws -> [String: [IPAddress]] { try GoldenCases.resolution() }
    static func compile(_ c: Case) throws -> Ruleset { try GoldenCases.compile(c) }

    func testGoldenNft() throws {
        for c in Self.cases {
            assertGolden(NftRenderer().render(try Self.compile(c)), Self.golden.appendingPathComponent("\(c.name).nft.ref"))
        }
    }

    func testGoldenIptables() throws {
        for c in Self.cases {
            assertGolden(IptablesRenderer().render(try Self.compile(c)), Self.golden.appendingPathComponent("\(c.name).iptables.ref"))
        }
    }

    func testGoldenJSON() throws {
        for c in Self.cases {
            assertGolden(JSONRenderer().render(try Self.compile(c)), Self.golden.appendingPathComponent("\(c.name).json.ref"))
        }
    }

    func testCompileIsDeterministic() throws {
        let c = Self.cases[2]
        let loaded = try PolicyReader.load(path: c.policy)
        var shuffled = try Self.resolution()
        shuffled = shuffled.mapValues { $0.shuffled() }
        var policy = loaded.policy
        policy.allows = policy.allows.reversed()
        let a = Compiler.compile(CompileInput(policy: loaded.policy, dnsServers: loaded.policy.dns.servers!, hostAddresses: try Self.resolution(), hostNetworks: Self.hostNetworks))
        let b = Compiler.compile(CompileInput(policy: policy, dnsServers: loaded.policy.dns.servers!.reversed(), hostAddresses: shuffled, hostNetworks: Self.hostNetworks.reversed()))
        XCTAssertEqual(NftRenderer().render(a), NftRenderer().render(b))
    }

    /// A shared address is one element; host addresses are not merged (each is its own
    /// kernel element), fixed prefixes are.
    func testSharedAddressesAreUniqueAndGroupsShareSets() throws {
        let r = try Self.compile(Self.cases[2])
        let web = try XCTUnwrap(r.table.set(named: "names4_tcp_80_443"))
        XCTAssertEqual(web.elements.map(\.description), ["192.0.2.20", "192.0.2.21", "192.0.2.22"])
        XCTAssertEqual(web.hosts, ["cdn-a.example.test", "cdn-b.example.test"])
        XCTAssertEqual(r.table.set(named: "allow4_tcp_22")?.elements.map(\.description), ["198.51.100.0/24"])
        XCTAssertEqual(r.table.set(named: "names6_tcp_443")?.elements.map(\.description), ["2001:db8::10", "2001:db8::30"])
    }

    func testSSHIsClosedUnlessListed() throws {
        let nft = NftRenderer().render(try Self.compile(Self.cases[0]))
        XCTAssertFalse(nft.contains("dport 22"), "claude-code.toml must not open SSH")
        XCTAssertTrue(NftRenderer().render(try Self.compile(Self.cases[2])).contains("tcp dport 22 counter accept"))
    }

    func testDNSOnlyToNamedServers() throws {
        let rules = try Self.compile(Self.cases[2]).table.chains[0].rules.map(NftRenderer().rule)
        XCTAssertEqual(rules.filter { $0.contains("dport 53") || $0.contains("dport 5353") }, [
            "ip daddr 192.0.2.53 tcp dport 53 counter accept",
            "ip daddr 192.0.2.53 udp dport 53 counter accept",
            "ip6 daddr 2001:db8::53 tcp dport 5353 counter accept",
            "ip6 daddr 2001:db8::53 udp dport 5353 counter accept",
        ])
    }
}
