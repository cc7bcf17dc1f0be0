import XCTest
import FWTestSupport

/// The reachability matrix: probes from the sandbox and what they must find.
extension LabTestCase {
    typealias A = Lab.Address

    /// What `LabPolicy()` (with `hostNetwork` as given) lets through, and that everything
    /// else is refused fast.
    func assertLabPolicyEnforced(hostNetwork: Bool = false, file: StaticString = #filePath, line: UInt = #line) throws {
        // Allowed: by name over IPv4 and IPv6 (A and AAAA), and a CNAME's target.
        try expectTCP("api.lab.test", 443, .connected, family: .v4, file: file, line: line)
        try expectTCP("api.lab.test", 443, .connected, family: .v6, file: file, line: line)
        try expectTCP("www.lab.test", 443, .connected, file: file, line: line)
        try expectTCP(A.cdn, 443, .connected, file: file, line: line)
        // Other ports of an allowed host, and hosts not in the policy.
        for host in [A.api, A.api6] {
            for port in [80, 8443] { try expectTCP(host, port, .refused, file: file, line: line) }
        }
        try expectTCP("blocked.lab.test", 443, .refused, file: file, line: line)
        try expectTCP(A.ssh, 443, .refused, file: file, line: line)
        // SSH only where an allow lists port 22.
        try expectTCP("ssh.lab.test", 22, .connected, file: file, line: line)
        for host in [A.api, A.api6, A.cdn] { try expectTCP(host, 22, .refused, file: file, line: line) }
        // DNS: the configured resolver, over udp and tcp; no other.
        for tcp in [false, true] {
            try expectDNS("api.lab.test", "A", server: A.resolver, tcp: tcp, [A.api], file: file, line: line)
            try expectDNS("api.lab.test", "AAAA", server: A.resolver, tcp: tcp, [A.api6], file: file, line: line)
            try expectDNS("api.lab.test", "A", server: A.rogueResolver, tcp: tcp, [], file: file, line: line)
        }
        // QUIC (UDP 443) is not allowed, even to an allowed host.
        for host in [A.api, A.api6] { try expectUDP(host, 443, .refused, file: file, line: line) }
        // The sandbox's own subnets: closed unless host_network.
        for host in [A.resolver, A.resolver6] {
            try expectTCP(host, Lab.Port.hostNetwork, hostNetwork ? .connected : .refused, file: file, line: line)
        }
    }

    /// A TCP connection; a refusal must also be fast (a reset or ICMP error, not a timeout).
    func expectTCP(_ host: String, _ port: Int, _ expected: TCPOutcome, family: Lab.Family? = nil, timeout: Double = 2,
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try lab.tcp(host, port, family: family, timeout: timeout)
        let what = "tcp \(host) \(port)" + (family.map { " (IPv\($0.rawValue))" } ?? "")
        XCTAssertEqual(p.outcome, expected, "\(what): \(p)", file: file, line: line)
        if expected == .refused {
            XCTAssertLessThan(p.elapsed, Self.fast, "\(what): refused, but not fast: \(p)", file: file, line: line)
        }
    }

    func expectUDP(_ host: String, _ port: Int, _ expected: UDPOutcome,
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let p = try lab.udp(host, port)
        XCTAssertEqual(p.outcome, expected, "udp \(host) \(port): \(p)", file: file, line: line)
    }

    /// A DNS query from the sandbox; `records` empty means no answer may come back.
    func expectDNS(_ name: String, _ type: String, server: String, tcp: Bool, _ records: [String],
                   file: StaticString = #filePath, line: UInt = #line) throws {
        let answer = try lab.dig(name, type, server: server, tcp: tcp)
        XCTAssertEqual(answer.records, records, "dig @\(server) \(name) \(type)\(tcp ? " +tcp" : ""): \(answer)",
                       file: file, line: line)
    }
}
