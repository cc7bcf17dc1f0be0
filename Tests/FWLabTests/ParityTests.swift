import XCTest
import FWTestSupport

/// fwctl's netlink encoding against nft's own: what `fwctl apply` makes in one namespace
/// lists exactly like what `nft -f` makes of `fwctl compile` in a fresh one (counters and
/// fwctl's apply metadata aside).
final class ParityTests: LabTestCase {
    func testLabPolicy() throws {
        try assertParity(LabPolicy())
    }

    /// Every other compiler path: drop, open input, no log, no ICMP, host subnets, a DNS
    /// server on IPv6 and another port, CIDRs merged and split, port ranges, UDP.
    func testEveryOtherPath() throws {
        var policy = LabPolicy(egress: "drop", inbound: "open", logDenied: false, hostNetwork: true, icmp: "none",
                               servers: [A.resolver, "[\(A.resolver6)]:5353"])
        policy.allows += [
            "host = \"api.lab.test\"\nports = [80, 443]",
            "cidr = [\"198.51.100.0/25\", \"198.51.100.128/25\", \"2001:db8:100::/48\"]\nports = [22]",
            "cidr = [\"203.0.113.0/24\", \"2001:db8:20::1\"]\nports = [\"8000-8100\", 9000]",
            "host = \"api.lab.test\"\nprotocol = \"udp\"\nports = [443]",
        ]
        try assertParity(policy)
    }

    private func assertParity(_ policy: LabPolicy, file: StaticString = #filePath, line: UInt = #line) throws {
        let path = try write(policy)
        try apply(path, file: file, line: line)
        let applied = try lab.nftList()
        // Resolved in the sandbox too, so both see the same answers and subnets.
        let compiled = try fwctl("compile", path, from: .inside)
        XCTAssertEqual(compiled.status, 0, compiled.stderr, file: file, line: line)

        let fresh = try NetworkNamespace(prefix: "fwlab-nft")
        defer { fresh.delete() }
        let load = try lab.nft(["-f", "-"], input: compiled.stdout, in: fresh)
        XCTAssertEqual(load.status, 0, load.stderr, file: file, line: line)
        let loaded = try lab.nftList(in: fresh)
        XCTAssertFalse(loaded.isEmpty, file: file, line: line)
        XCTAssertEqual(RulesetText.comparable(applied), RulesetText.comparable(loaded), file: file, line: line)
    }
}
