import XCTest
@testable import FWPolicy

final class ValueTests: XCTestCase {
    func testIPAddressParsingIsStrict() {
        XCTAssertEqual(IPAddress("192.0.2.1")?.description, "192.0.2.1")
        XCTAssertEqual(IPAddress("2001:DB8:0:0:0:0:0:1")?.description, "2001:db8::1")
        for bad in ["192.0.2", "0300.0.2.1", "3221225985", "192.0.2.1.", "[::1]", "fe80::1%eth0", "", "1.2.3.256"] {
            XCTAssertNil(IPAddress(bad), bad)
        }
        XCTAssertEqual(IPAddress("198.51.100.7")?.bytes, [198, 51, 100, 7])
        XCTAssertEqual(IPAddress(bytes: [0x20, 0x01, 0x0d, 0xb8] + Array(repeating: 0, count: 11) + [1])?.description, "2001:db8::1")
    }

    func testCIDRParse() {
        XCTAssertEqual(try CIDR.parse("10.0.0.0/8").get().description, "10.0.0.0/8")
        XCTAssertEqual(try CIDR.parse("192.0.2.7").get().description, "192.0.2.7")
        XCTAssertEqual(try CIDR.parse("2001:db8::/32").get().prefixLength, 32)
        XCTAssertEqual(try CIDR.parse("0.0.0.0/0").get().description, "0.0.0.0/0")
        XCTAssertEqual(CIDR.parse("10.0.0.0/33"), .failure(.prefixTooLong(33, max: 32)))
        XCTAssertEqual(CIDR.parse("10.0.0.1/8"), .failure(.hostBitsSet("10.0.0.1/8", meant: try CIDR.parse("10.0.0.0/8").get())))
        XCTAssertEqual(CIDR.parse("10.0.0.0/x"), .failure(.badPrefix("10.0.0.0/x")))
        XCTAssertEqual(CIDR.parse("example.com/8"), .failure(.notAnAddress("example.com/8")))
    }

    func testCIDRMergeJoinsOverlapsAndNeighbours() throws {
        let input = ["192.0.2.0/25", "192.0.2.128/25", "192.0.2.7", "198.51.100.0/24", "198.51.101.0/24",
                     "2001:db8::/33", "2001:db8:8000::/33", "203.0.113.5"]
        let merged = CIDRSet.merge(try input.map { try CIDR.parse($0).get() }.shuffled())
        XCTAssertEqual(merged.map(\.description),
                       ["192.0.2.0/24", "198.51.100.0/23", "203.0.113.5", "2001:db8::/32"])
    }

    func testCIDRMergeSplitsUnalignedRangesIntoPrefixes() throws {
        let merged = CIDRSet.merge(try ["10.0.0.0/24", "10.0.1.0/24", "10.0.2.0/24"].map { try CIDR.parse($0).get() })
        XCTAssertEqual(merged.map(\.description), ["10.0.0.0/23", "10.0.2.0/24"])
    }

    func testCIDRMergeHandlesTheTopOfTheAddressSpace() throws {
        let merged = CIDRSet.merge(try ["255.255.255.255", "255.255.255.254", "128.0.0.0/1", "0.0.0.0/1",
                                        "ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff", "::/0"].map { try CIDR.parse($0).get() })
        XCTAssertEqual(merged.map(\.description), ["0.0.0.0/0", "::/0"])
    }

    func testPorts() {
        XCTAssertEqual(PortRange.parse("8000-8100"), .success(PortRange(8000, 8100)!))
        XCTAssertEqual(PortRange.parse("8100-8000"), .failure(.inverted("8100-8000")))
        XCTAssertEqual(PortRange.parse(number: 0), .failure(.outOfRange("0")))
        XCTAssertEqual(PortRange.parse("65536"), .failure(.outOfRange("65536")))
        XCTAssertEqual(PortRange.parse("http"), .failure(.malformed("http")))
        XCTAssertEqual(PortRange.merge([PortRange(443, 443)!, PortRange(80, 80)!, PortRange(81, 90)!, PortRange(85, 100)!]).map(\.description),
                       ["80-100", "443"])
    }

    func testHostPatternMatching() throws {
        let exact = try HostPattern.parse("API.Example.com.").get()
        XCTAssertEqual(exact.description, "api.example.com")
        XCTAssertTrue(exact.matches("api.example.com"))
        XCTAssertTrue(exact.matches("API.EXAMPLE.COM."))
        XCTAssertFalse(exact.matches("x.api.example.com"))

        let wild = try HostPattern.parse("*.example.com").get()
        XCTAssertTrue(wild.matches("a.example.com"))
        XCTAssertTrue(wild.matches("a.b.example.com."))
        XCTAssertFalse(wild.matches("example.com"))
        XCTAssertFalse(wild.matches("badexample.com"))
        XCTAssertFalse(wild.matches("a.example.com.evil.test"))
    }

    func testHostPatternRejects() {
        XCTAssertEqual(HostPattern.parse("192.0.2.1"), .failure(.ipLiteral("192.0.2.1")))
        XCTAssertEqual(HostPattern.parse("*.com"), .failure(.wildcardTooBroad("*.com")))
        XCTAssertEqual(HostPattern.parse("a.*.com"), .failure(.badWildcard("a.*.com")))
        XCTAssertEqual(HostPattern.parse("-a.example.com"), .failure(.badLabel("-a.example.com", label: "-a")))
        XCTAssertEqual(HostPattern.parse("a..b"), .failure(.badLabel("a..b", label: "")))
        XCTAssertEqual(HostPattern.parse("a_b.example"), .failure(.badLabel("a_b.example", label: "a_b")))
    }

    func testSocketEndpoint() {
        XCTAssertEqual(try SocketEndpoint.parse("127.0.0.11", defaultPort: 53).get().description, "127.0.0.11:53")
        XCTAssertEqual(try SocketEndpoint.parse("[2001:db8::53]:5353", defaultPort: 53).get().description, "[2001:db8::53]:5353")
        XCTAssertEqual(try SocketEndpoint.parse("2001:db8::53", defaultPort: 53).get().port, 53)
        XCTAssertEqual(SocketEndpoint.parse("127.0.0.1", defaultPort: nil), .failure(.malformed("127.0.0.1", portRequired: true)))
        XCTAssertEqual(SocketEndpoint.parse("127.0.0.1:0", defaultPort: nil), .failure(.badPort("127.0.0.1:0")))
        XCTAssertEqual(SocketEndpoint.parse("localhost:53", defaultPort: 53), .failure(.malformed("localhost:53", portRequired: false)))
    }

    func testLocatorFindsKeysValuesAndArrayElements() {
        let text = """
        version = 1
        [dns]
        servers = ["127.0.0.11",
                   "bad"]

        [[allow]]
        host = "a.test"

        [[allow]]
          cidr = [ "10.0.0.0/8", "x" ]   # comment with [brackets]
        [[allow.inject]]
        header = 'x-api-key'
        [firewall]
        "log_denied" = true
        """
        let loc = SourceLocator(text: text)
        XCTAssertEqual(loc.valueLocation("dns.servers".path.index(1)), SourceLocation(line: 4, column: 12))
        XCTAssertEqual(loc.keyLocation(KeyPath([.key("allow"), .index(0)])), SourceLocation(line: 6, column: 1))
        XCTAssertEqual(loc.valueLocation(KeyPath([.key("allow"), .index(1), .key("cidr"), .index(1)])), SourceLocation(line: 10, column: 26))
        XCTAssertEqual(loc.keyLocation(KeyPath([.key("allow"), .index(1), .key("inject"), .index(0), .key("header")])), SourceLocation(line: 12, column: 1))
        XCTAssertEqual(loc.keyLocation("firewall.log_denied"), SourceLocation(line: 14, column: 1))
        // Unknown paths fall back to the nearest parent.
        XCTAssertEqual(loc.keyLocation(KeyPath([.key("allow"), .index(0), .key("ports")])), SourceLocation(line: 6, column: 1))
    }

    func testKeyPathDescription() {
        XCTAssertEqual(KeyPath([.key("allow"), .index(2), .key("cidr"), .index(0)]).description, "allow[2].cidr[0]")
        XCTAssertEqual(KeyPath([.key("a b")]).description, "\"a b\"")
    }
}

extension String {
    var path: KeyPath { KeyPath(stringLiteral: self) }
}
