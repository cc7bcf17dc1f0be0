import Foundation
import XCTest
import FWTestSupport

/// apply, diff, status and reset against the sandbox's kernel.
final class ApplyTests: LabTestCase {
    /// The lab policy with one more allow, for a change that must show in a diff.
    static let changed = LabPolicy().allowing("host = \"api.lab.test\"\nports = [8443]")

    func testOtherTablesSurviveApplyAndResetRemovesOnlyFwctlsTable() throws {
        let docker = try loadDockerTable()
        let before = try lab.nftList()
        try apply(try write(LabPolicy()))
        XCTAssertTrue(try lab.nftList().contains("table inet fwctl {"))
        XCTAssertEqual(try lab.nft(["list", "table", "ip", "docker_nat"]).stdout, docker)
        let reset = try fwctl("reset")
        XCTAssertEqual(reset.status, 0, reset.stderr)
        XCTAssertEqual(try lab.nftList(), before)
    }

    func testApplyWithNetnsNameOrPathAndFromInsideMakeTheSameTable() throws {
        let policy = try write(LabPolicy())
        var listings: [Lab.Vantage: String] = [:]
        for vantage in Lab.Vantage.allCases {
            try apply(policy, from: vantage)
            listings[vantage] = RulesetText.comparable(try lab.nftList())
            let reset = try fwctl("reset", from: vantage)
            XCTAssertEqual(reset.status, 0, "\(vantage): \(reset.stderr)")
            XCTAssertEqual(try lab.nftList(), "", "\(vantage): reset left something")
        }
        XCTAssertTrue(listings[.inside]?.contains("table inet fwctl {") ?? false)
        XCTAssertEqual(listings[.netnsName], listings[.inside])
        XCTAssertEqual(listings[.netnsPath], listings[.inside])
    }

    /// With no dns.servers, `--netns NAME` takes the namespace's own resolv.conf
    /// (/etc/netns/NAME/resolv.conf, as `ip netns exec` does) for asking and for the rules.
    func testNetnsNameUsesTheNamespacesResolvConf() throws {
        let toml = LabPolicy().toml.split(separator: "\n", omittingEmptySubsequences: false)
            .filter { !$0.hasPrefix("servers = ") }.joined(separator: "\n")
        let policy = try lab.write("no-servers.toml", toml)
        try apply(policy, from: .netnsName)
        let live = try lab.nftList()
        XCTAssertTrue(live.contains("ip daddr \(Lab.Address.resolver) udp dport 53 counter"), live)
        XCTAssertTrue(live.contains(Lab.Address.api), live)
    }

    func testDiffIsEmptyRightAfterApply() throws {
        let policy = try write(LabPolicy())
        try apply(policy)
        for vantage in [Lab.Vantage.netnsName, .inside] {
            let diff = try fwctl("diff", policy, "--exit-code", from: vantage)
            XCTAssertEqual(diff.status, 0, "\(vantage): \(diff.stderr)")
            XCTAssertEqual(diff.stdout, "", "\(vantage)")
        }
    }

    func testReapplyIsIdempotent() throws {
        let policy = try write(LabPolicy())
        try apply(policy)
        let first = try lab.nftList()
        try apply(policy)
        XCTAssertEqual(RulesetText.comparable(try lab.nftList()), RulesetText.comparable(first))
        XCTAssertEqual(try fwctl("diff", policy, "--exit-code").status, 0)
    }

    /// A policy change shows as a diff (exit 1 with --exit-code) and as `apply --dry-run`,
    /// and neither changes the kernel.
    func testChangedPolicyShowsInDiffAndDryRunAndChangesNothing() throws {
        try apply(try write(LabPolicy()))
        let before = try lab.nftList()
        let changed = try write(Self.changed, as: "changed.toml")

        let diff = try fwctl("diff", changed, "--exit-code")
        XCTAssertEqual(diff.status, 1, diff.stderr)
        assertAddsPort8443(diff.stdout)
        try assertRulesetUnchanged(since: before, "diff")

        let dryRun = try fwctl("apply", changed, "--dry-run")
        XCTAssertEqual(dryRun.status, 0, dryRun.stderr)
        assertAddsPort8443(dryRun.stdout)
        try assertRulesetUnchanged(since: before, "apply --dry-run")
    }

    /// Allowing one more port is an addition: `+` lines naming 8443 and no `-` line.
    private func assertAddsPort8443(_ diff: String, file: StaticString = #filePath, line: UInt = #line) {
        let lines = diff.split(separator: "\n")
        let added = lines.filter { $0.hasPrefix("+") && !$0.hasPrefix("+++") }
        let removed = lines.filter { $0.hasPrefix("-") && !$0.hasPrefix("---") }
        XCTAssertTrue(added.contains { $0.contains("8443") }, "no added line names 8443:\n\(diff)", file: file, line: line)
        XCTAssertEqual(removed, [], "an added allow removed lines:\n\(diff)", file: file, line: line)
    }

    /// `apply --check` has the kernel validate the transaction and commits nothing: not a
    /// first table, and not a change to an existing one.
    func testCheckCommitsNothing() throws {
        try loadDockerTable()
        let empty = try lab.nftList()
        let first = try fwctl("apply", try write(LabPolicy()), "--check")
        XCTAssertEqual(first.status, 0, first.stderr)
        try assertRulesetUnchanged(since: empty, "apply --check without a table")

        try apply(try write(LabPolicy()))
        let applied = try lab.nftList()
        let change = try fwctl("apply", try write(Self.changed, as: "changed.toml"), "--check")
        XCTAssertEqual(change.status, 0, change.stderr)
        try assertRulesetUnchanged(since: applied, "apply --check of a change")
    }

    /// `status --json`: the live table, its set sizes, and the apply record naming the
    /// policy file and its SHA-256.
    func testStatusJSONDescribesTheAppliedTable() throws {
        let policy = try write(LabPolicy())
        try apply(policy)
        let status = try fwctl("status", "--json")
        XCTAssertEqual(status.status, 0, status.stderr)
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any],
                                 status.stdout)
        XCTAssertEqual(json["table"] as? String, "fwctl")
        XCTAssertEqual(json["present"] as? Bool, true)
        let applied = try XCTUnwrap(json["applied"] as? [String: Any], status.stdout)
        XCTAssertEqual(applied["policy"] as? String, policy)
        XCTAssertEqual(applied["sha256"] as? String, try sha256(of: policy))
        // api.lab.test and cdn.lab.test (www's target) on 443, ssh.lab.test on 22.
        let sets = (json["sets"] as? [[String: Any]] ?? []).reduce(into: [String: Int]()) {
            $0[$1["name"] as? String ?? ""] = $1["elements"] as? Int
        }
        XCTAssertEqual(sets, ["names4_tcp_443": 2, "names6_tcp_443": 1, "names4_tcp_22": 1, "names6_tcp_22": 0],
                       status.stdout)
    }

    private func sha256(of path: String) throws -> String {
        let r = try FWTestSupport.run(try tool("sha256sum"), [path])
        XCTAssertEqual(r.status, 0, r.stderr)
        return String(r.stdout.prefix { $0 != " " })
    }
}
