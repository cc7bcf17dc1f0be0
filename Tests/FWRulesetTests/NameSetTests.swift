import XCTest
import FWPolicy
import FWRender
import FWRuleset

/// Host addresses live in names sets (single addresses, the timeout flag, one element each,
/// for `fwctl watch`), fixed prefixes in allow sets (merged intervals).
final class NameSetTests: XCTestCase {
    static func compile(_ toml: String, _ addresses: [String: [String]]?) throws -> Ruleset {
        let policy = try PolicyReader.parse(text: "version = 1\n[dns]\nservers = [\"192.0.2.53\"]\n" + toml,
                                            file: "test.toml", baseDirectory: "/").policy
        return Compiler.compile(CompileInput(policy: policy, dnsServers: policy.dns.servers!,
                                             hostAddresses: addresses?.mapValues { $0.compactMap(IPAddress.init) }))
    }

    static let mixed = """
        [[allow]]
        host = "b.example.test"
        [[allow]]
        host = "a.example.test"
        [[allow]]
        cidr = ["198.51.100.0/25", "198.51.100.128/25"]
        """
    static let resolved = ["a.example.test": ["192.0.2.2", "2001:db8::1"], "b.example.test": ["192.0.2.1", "192.0.2.2"]]

    func testHostsAndPrefixesGoToSeparateSets() throws {
        let t = try Self.compile(Self.mixed, Self.resolved).table
        XCTAssertEqual(t.sets.map(\.name), ["allow4_tcp_443", "allow6_tcp_443", "names4_tcp_443", "names6_tcp_443"])
        let allow4 = try XCTUnwrap(t.set(named: "allow4_tcp_443"))
        XCTAssertEqual(allow4.flags, [.interval])
        XCTAssertEqual(allow4.elements.map(\.description), ["198.51.100.0/24"])
        XCTAssertEqual(allow4.hosts, [])
        let names4 = try XCTUnwrap(t.set(named: "names4_tcp_443"))
        XCTAssertEqual(names4.flags, [.timeout])
        XCTAssertEqual(names4.hosts, ["a.example.test", "b.example.test"])
        XCTAssertEqual(t.set(named: "names6_tcp_443")?.elements.map(\.description), ["2001:db8::1"])
        XCTAssertEqual(t.chains[0].rules.map(NftRenderer().rule).filter { $0.contains("dport 443") }, [
            "ip daddr @allow4_tcp_443 tcp dport 443 counter accept",
            "ip6 daddr @allow6_tcp_443 tcp dport 443 counter accept",
            "ip daddr @names4_tcp_443 tcp dport 443 counter accept",
            "ip6 daddr @names6_tcp_443 tcp dport 443 counter accept",
        ])
    }

    /// Adjacent addresses would merge into 192.0.2.0/31... if this were an interval set; the
    /// kernel holds each as its own element with its own timeout, and so does the IR.
    func testAdjacentHostAddressesStayTwoElements() throws {
        let names4 = try XCTUnwrap(try Self.compile(Self.mixed, Self.resolved).table.set(named: "names4_tcp_443"))
        XCTAssertEqual(names4.elements.map(\.longDescription), ["192.0.2.1/32", "192.0.2.2/32"])
    }

    func testSetsExistOnlyForWhatTheGroupHas() throws {
        let onlyHosts = try Self.compile("[[allow]]\nhost = \"a.example.test\"\n", Self.resolved).table
        XCTAssertEqual(onlyHosts.sets.map(\.name), ["names4_tcp_443", "names6_tcp_443"])
        let onlyPrefixes = try Self.compile("[[allow]]\ncidr = [\"198.51.100.0/24\"]\n", Self.resolved).table
        XCTAssertEqual(onlyPrefixes.sets.map(\.name), ["allow4_tcp_443", "allow6_tcp_443"])
    }

    /// Offline, the names sets are there, empty, waiting for `watch`.
    func testOfflineKeepsEmptyNamesSets() throws {
        let t = try Self.compile(Self.mixed, nil).table
        XCTAssertEqual(t.set(named: "names4_tcp_443")?.elements, [])
        XCTAssertEqual(t.set(named: "names6_tcp_443")?.hosts, ["a.example.test", "b.example.test"])
    }

    func testSetsForHost() throws {
        let t = try Self.compile(Self.mixed + "\n[[allow]]\nhost = \"a.example.test\"\nports = [80]\n", Self.resolved).table
        XCTAssertEqual(t.sets(forHost: "a.example.test", family: .ipv4), ["names4_tcp_80", "names4_tcp_443"])
        XCTAssertEqual(t.sets(forHost: "b.example.test", family: .ipv6), ["names6_tcp_443"])
        XCTAssertEqual(t.sets(forHost: "c.example.test", family: .ipv4), [])
    }

    /// Long port lists: both kinds are shortened the same way and stay distinct.
    func testLongNamesShareTheScheme() throws {
        let ports = (1...12).map { "\($0 * 1000)" }.joined(separator: ", ")
        let t = try Self.compile("[[allow]]\nhost = \"a.example.test\"\nports = [\(ports)]\n[[allow]]\ncidr = [\"198.51.100.0/24\"]\nports = [\(ports)]\n",
                                 Self.resolved).table
        let names = t.sets.map(\.name)
        XCTAssertEqual(names.count, 4)
        XCTAssertTrue(names.allSatisfy { $0.count <= 40 }, "\(names)")
        XCTAssertEqual(names.map { $0.prefix(6) }, ["allow4", "allow6", "names4", "names6"])
        XCTAssertEqual(Set(names.map { $0.dropFirst(6) }).count, 1, "the same shortened tail: \(names)")
    }
}
