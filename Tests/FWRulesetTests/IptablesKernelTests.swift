import Foundation
import XCTest
import FWRender
import FWRuleset
import FWTestSupport

/// The iptables rendering loaded by the real tools, in a namespace each test creates.
final class IptablesKernelTests: XCTestCase {
    func testIpsetAndIptablesRestoreAcceptEveryRendering() throws {
        let ipset = try tool("ipset")
        let v4 = try tool("iptables-restore")
        let v6 = try tool("ip6tables-restore")
        for c in CompilerGoldenTests.cases {
            let ns = try NetworkNamespace()
            defer { ns.delete() }
            let ruleset = try CompilerGoldenTests.compile(c)
            let parts = IptablesRenderer().parts(ruleset)
            let sets = try ns.exec(ipset, ["restore"], input: parts.ipset)
            XCTAssertEqual(sets.status, 0, "\(c.name): ipset restore refused it:\n\(sets.stderr)")
            // Loaded for real (not only --test), so the set references resolve.
            let r4 = try ns.exec(v4, ["--noflush"], input: parts.ipv4)
            XCTAssertEqual(r4.status, 0, "\(c.name): iptables-restore refused it:\n\(r4.stderr)")
            let r6 = try ns.exec(v6, ["--noflush"], input: parts.ipv6)
            XCTAssertEqual(r6.status, 0, "\(c.name): ip6tables-restore refused it:\n\(r6.stderr)")
            // The hook is one jump from each built-in chain.
            let save = try ns.exec(try tool("iptables-save"), [])
            XCTAssertTrue(save.stdout.contains("-A OUTPUT -j \(IptablesRenderer.chainName("output", table: ruleset.table.name))"), save.stdout)
        }
    }
}
