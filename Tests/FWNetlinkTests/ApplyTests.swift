import Foundation
import XCTest
@testable import FWNetlink
import FWPolicy
import FWRender
import FWRuleset
import FWTestSupport

/// The netlink path against the real kernel, each test in namespaces it creates.
final class ApplyTests: XCTestCase {
    var nft: String!
    override func setUpWithError() throws { nft = try tool("nft") }

    func list(_ ns: FWTestSupport.NetworkNamespace) throws -> String {
        let r = try ns.exec(nft, ["list", "ruleset"])
        XCTAssertEqual(r.status, 0, r.stderr)
        return r.stdout
    }

    /// Encoding parity: what fwctl puts in the kernel lists exactly like what `nft -f` makes
    /// of fwctl's own nft rendering of the same ruleset.
    func testAppliedTableListsLikeNftOfTheRendering() throws {
        for c in GoldenCases.all {
            let ruleset = try GoldenCases.compile(c)
            let viaFwctl = try FWTestSupport.NetworkNamespace()
            let viaNft = try FWTestSupport.NetworkNamespace()
            defer { viaFwctl.delete(); viaNft.delete() }
            try viaFwctl.inside { try Kernel.apply(ruleset) }
            let loaded = try viaNft.exec(nft, ["-f", "-"], input: NftRenderer().render(ruleset))
            XCTAssertEqual(loaded.status, 0, loaded.stderr)
            XCTAssertEqual(try list(viaFwctl), try list(viaNft), "\(c.name): netlink encoding differs from nft's")
        }
    }

    func testApplyIsIdempotentAndKeepsOtherTables() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        let other = "table ip docker_nat {\n\tchain output {\n\t\ttype nat hook output priority -100; policy accept;\n\t\tip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:40000\n\t}\n}\n"
        XCTAssertEqual(try ns.exec(nft, ["-f", "-"], input: other).status, 0)
        let ruleset = try GoldenCases.compile(GoldenCases.all[2])
        try ns.inside { try Kernel.apply(ruleset) }
        let first = try list(ns)
        try ns.inside { try Kernel.apply(ruleset) }
        XCTAssertEqual(try list(ns), first)
        XCTAssertTrue(first.hasPrefix(other), "the other table must be untouched:\n\(first)")
        XCTAssertEqual(try ns.inside { try Kernel.reset(table: "fwlab") }, true)
        XCTAssertEqual(try list(ns), other)
        XCTAssertEqual(try ns.inside { try Kernel.reset(table: "fwlab") }, false)
        XCTAssertEqual(try list(ns), other)
    }

    /// A refused transaction changes nothing, and the error names the object.
    func testRefusedApplyLeavesTheLiveRulesetByteIdentical() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        let good = try GoldenCases.compile(GoldenCases.all[0])
        try ns.inside { try Kernel.apply(good) }
        let before = try list(ns)

        var bad = try GoldenCases.compile(GoldenCases.all[3])
        bad.table.name = good.table.name
        bad.table.chains[0].rules.insert(Rule([], [], .jump("no_such_chain")), at: 2)
        XCTAssertThrowsError(try ns.inside { try Kernel.apply(bad) }) { error in
            XCTAssertEqual(error as? NetlinkError, .refused(object: "rule 3 of chain output", errno: ENOENT))
        }
        XCTAssertEqual(try list(ns), before)
        // --check reports the same refusal and changes nothing either.
        XCTAssertThrowsError(try ns.inside { try Kernel.apply(bad, commit: false) })
        XCTAssertEqual(try list(ns), before)
    }

    func testCheckCommitsNothing() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        let ruleset = try GoldenCases.compile(GoldenCases.all[2])
        try ns.inside { try Kernel.apply(ruleset, commit: false) }
        XCTAssertEqual(try list(ns), "", "check must not create the table")
        try ns.inside { try Kernel.apply(ruleset) }
        let before = try list(ns)
        var other = try GoldenCases.compile(GoldenCases.all[3])
        other.table.name = ruleset.table.name
        try ns.inside { try Kernel.apply(other, commit: false) }
        XCTAssertEqual(try list(ns), before)
    }

    /// 100,000 elements: more than one socket buffer and many NEWSETELEM messages, in one
    /// transaction.
    func testLargeSetInOneTransaction() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        let base = IPAddress("10.0.0.0")!.value
        let elements = (0..<100_000).map { CIDR(host: IPAddress(family: .ipv4, value: base + UInt128($0) * 2)) }
        let set = NamedSet(name: "big4", keyType: .ipv4Addr, elements: elements)
        let rule = Rule([.address(.destination, .ipv4, .set("big4"))], [.counter], .accept)
        let ruleset = Ruleset(table: Table(name: "fwbig", sets: [set], chains: [
            Chain(name: "output", base: .init(type: .filter, hook: .output, priority: 0, policy: .accept), rules: [rule]),
        ]))
        try ns.inside { try Kernel.apply(ruleset) }
        let listed = try ns.exec(nft, ["-j", "list", "set", "inet", "fwbig", "big4"])
        XCTAssertEqual(listed.status, 0, listed.stderr)
        XCTAssertTrue(listed.stdout.contains("\"10.0.0.0\""))
        XCTAssertTrue(listed.stdout.contains("\"10.3.13.62\""), "the last element (10.0.0.0 + 2 x 99,999)")
        let count = listed.stdout.components(separatedBy: "\"10.").count - 1
        XCTAssertEqual(count, 100_000)
    }

    /// A batch built against an old ruleset generation is refused whole: a concurrent change
    /// by someone else is never silently overwritten (apply then rebuilds and retries).
    func testStaleGenerationIsRefusedAndChangesNothing() throws {
        let ns = try FWTestSupport.NetworkNamespace()
        defer { ns.delete() }
        let mine = try GoldenCases.compile(GoldenCases.all[2])
        let theirs = "table ip someone_else {\n\tchain c {\n\t}\n}\n"
        try ns.inside {
            let socket = try NetlinkSocket()
            let before = try Kernel.generation(socket)
            XCTAssertEqual(try ns.exec(self.nft, ["-f", "-"], input: theirs).status, 0)
            let batch = Batch(socket: socket, genid: before)
            Kernel.build(mine, into: batch)
            XCTAssertThrowsError(try batch.send(commit: true)) { error in
                XCTAssertEqual(error as? NetlinkError, .generationChanged)
            }
        }
        XCTAssertEqual(try list(ns), theirs)
        // Kernel.apply fetches the generation afresh and succeeds.
        try ns.inside { try Kernel.apply(mine) }
        XCTAssertTrue(try list(ns).contains("table inet fwlab"))
    }

    func testNamespaceThatDoesNotExistIsAClearError() {
        XCTAssertThrowsError(try FWNetlink.NetworkNamespace.enter("fwctl-no-such-namespace")) { error in
            XCTAssertEqual((error as? NetlinkError)?.description,
                           "network namespace fwctl-no-such-namespace: cannot open /run/netns/fwctl-no-such-namespace: No such file or directory")
        }
    }
}
