import Foundation
import XCTest
import FWRender
import FWRuleset
import FWTestSupport

/// The nft rendering against the real kernel, in a namespace each test creates.
final class NftKernelTests: XCTestCase {
    /// `nft -c -f` accepts every golden rendering.
    func testNftAcceptsEveryRendering() throws {
        let nft = try tool("nft")
        let ns = try NetworkNamespace()
        defer { ns.delete() }
        for c in CompilerGoldenTests.cases {
            let text = NftRenderer().render(try CompilerGoldenTests.compile(c))
            let r = try ns.exec(nft, ["-c", "-f", "-"], input: text)
            XCTAssertEqual(r.status, 0, "\(c.name): nft -c refused it:\n\(r.stderr)")
        }
    }

    /// Loaded for real, `nft list table` prints exactly what fwctl rendered (with zero
    /// counters and no comments): the rendering is nft's own format.
    func testLoadedTableListsAsRendered() throws {
        let nft = try tool("nft")
        for c in CompilerGoldenTests.cases {
            let ns = try NetworkNamespace()
            defer { ns.delete() }
            let ruleset = try CompilerGoldenTests.compile(c)
            let load = try ns.exec(nft, ["-f", "-"], input: NftRenderer().render(ruleset))
            XCTAssertEqual(load.status, 0, "\(c.name): \(load.stderr)")
            let listed = try ns.exec(nft, ["list", "table", "inet", ruleset.table.name])
            XCTAssertEqual(listed.status, 0, listed.stderr)
            let expected = NftRenderer(options: .init(counters: true, notes: false)).render(ruleset)
            XCTAssertEqual(listed.stdout, expected, "\(c.name): nft list differs from the rendering")
        }
    }

    /// The rendering never touches a table other than its own.
    func testLoadingLeavesOtherTablesAlone() throws {
        let nft = try tool("nft")
        let ns = try NetworkNamespace()
        defer { ns.delete() }
        let other = "table ip docker_dns {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tip daddr 127.0.0.11 udp dport 53 counter dnat to 127.0.0.11:40000\n\t}\n}\n"
        XCTAssertEqual(try ns.exec(nft, ["-f", "-"], input: other).status, 0)
        let before = try ns.exec(nft, ["list", "table", "ip", "docker_dns"]).stdout
        let text = NftRenderer().render(try CompilerGoldenTests.compile(CompilerGoldenTests.cases[0]))
        XCTAssertEqual(try ns.exec(nft, ["-f", "-"], input: text).status, 0)
        XCTAssertEqual(try ns.exec(nft, ["list", "table", "ip", "docker_dns"]).stdout, before)
    }
}
