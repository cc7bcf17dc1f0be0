import XCTest
import FWPolicy
@testable import FWProxy

final class DialGuardTests: XCTestCase {
    let guardNone = DialGuard(policy: RulesFixture.standard)

    private func ip(_ s: String) -> IPAddress {
        guard let a = IPAddress(s) else { preconditionFailure("bad test address \(s)") }
        return a
    }

    func testDangerousRangesRefused() {
        let cases: [(String, String)] = [
            ("127.0.0.1", "loopback"), ("127.8.9.10", "loopback"), ("::1", "loopback"),
            ("169.254.1.1", "link-local"), ("fe80::1", "link-local"), ("febf::1", "link-local"),
            ("169.254.169.254", "cloud metadata"), ("fd00:ec2::254", "cloud metadata"),
            ("100.100.100.200", "cloud metadata"), ("168.63.129.16", "cloud metadata"),
            ("0.0.0.0", "unspecified"), ("0.1.2.3", "unspecified"), ("::", "unspecified"),
            ("224.0.0.1", "multicast"), ("239.255.255.250", "multicast"), ("ff02::1", "multicast"),
            ("255.255.255.255", "broadcast"),
        ]
        for (addr, range) in cases {
            let r = guardNone.check(ip(addr), host: "api.example.test")
            XCTAssertEqual(r?.kind, .dangerousAddress, addr)
            XCTAssertEqual(r?.status, 403, addr)
            XCTAssertTrue(r?.reason.contains("(\(range))") ?? false, "\(addr): \(r?.reason ?? "allowed")")
        }
        XCTAssertEqual(guardNone.check(ip("169.254.169.254"), host: "rebind.example.test")?.reason,
                       "\"rebind.example.test\" resolved to 169.254.169.254 (cloud metadata); the proxy does not dial it unless a cidr allow covers it")
    }

    func testIPv6FormsOfDangerousIPv4Refused() {
        for addr in ["::ffff:127.0.0.1", "::ffff:169.254.169.254", "::ffff:0.0.0.0", "::ffff:224.0.0.1",
                     "::ffff:0:127.0.0.1", "64:ff9b::127.0.0.1", "::127.0.0.1"] {
            let r = guardNone.check(ip(addr), host: "api.example.test")
            XCTAssertEqual(r?.kind, .dangerousAddress, addr)
            XCTAssertTrue(r?.reason.contains("embedded in IPv6") ?? false, addr)
        }
    }

    func testOrdinaryAddressesAllowed() {
        for addr in ["192.0.2.1", "198.51.100.7", "203.0.113.9", "2001:db8::1", "::ffff:192.0.2.1",
                     "64:ff9b::c000:201", "8.8.8.8", "2606:4700::1111", "10.1.2.3", "169.253.255.255",
                     "169.255.0.1", "fec0::1", "fd00:ec2::253"] {
            XCTAssertNil(guardNone.check(ip(addr), host: "api.example.test"), addr)
        }
    }

    func testCidrAllowCoversAddress() {
        let p = RulesFixture.policy("""
            [[allow]]
            cidr = ["169.254.169.254/32", "127.0.0.0/8", "fe80::/64"]
            ports = [80, 8080]
            """)
        let g = DialGuard(policy: p)
        XCTAssertNil(g.check(ip("169.254.169.254"), host: "metadata.test"))
        XCTAssertNil(g.check(ip("127.0.0.1"), host: "local.test"))
        XCTAssertNil(g.check(ip("::ffff:127.0.0.1"), host: "local.test"))   // by its IPv4 address
        XCTAssertNil(g.check(ip("fe80::1"), host: "ll.test"))
        // Not covered: the rest of the ranges.
        XCTAssertEqual(g.check(ip("169.254.169.253"), host: "x.test")?.kind, .dangerousAddress)
        XCTAssertEqual(g.check(ip("::1"), host: "x.test")?.kind, .dangerousAddress)
        XCTAssertEqual(g.check(ip("fe80:0:0:1::1"), host: "x.test")?.kind, .dangerousAddress)
        // With a port, the covering allow must list it.
        XCTAssertNil(g.check(ip("127.0.0.1"), host: "local.test", port: 8080))
        XCTAssertEqual(g.check(ip("127.0.0.1"), host: "local.test", port: 443)?.kind, .dangerousAddress)
    }

    func testReasonIsOneLine() {
        let r = guardNone.check(ip("127.0.0.1"), host: "evil\r\nX-Injected: 1")
        XCTAssertFalse(r?.reason.contains("\n") ?? true)
        XCTAssertFalse(r?.reason.contains("\r") ?? true)
    }
}
