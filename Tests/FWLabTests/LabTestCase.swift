import Foundation
import XCTest
import FWTestSupport

/// A test with a fresh lab (Tests/FWTestSupport/Lab.swift): a sandbox namespace, the outside
/// world it reaches over a veth pair, and a controller namespace for `fwctl --netns`.
/// The lab is destroyed after every test, also a failed one.
class LabTestCase: XCTestCase {
    var lab: Lab!

    /// A refusal (reset or ICMP) arrives in well under this; a drop would take the probe's
    /// whole time limit.
    static let fast = 0.5

    override func setUpWithError() throws { lab = try Lab() }

    override func tearDown() {
        lab?.destroy()
        lab = nil
    }

    /// Writes `policy` into the lab's work directory and returns its path.
    func write(_ policy: LabPolicy, as name: String = "policy.toml") throws -> String {
        try lab.write(name, policy.toml)
    }

    /// Runs fwctl from `vantage`. A --netns command must act on the sandbox only: the
    /// controller namespace it runs in keeps an empty ruleset.
    @discardableResult
    func fwctl(_ args: String..., from vantage: Lab.Vantage = .netnsName,
               file: StaticString = #filePath, line: UInt = #line) throws -> ProcessResult {
        let r = try lab.fwctl(args, from: vantage)
        if vantage != .inside {
            XCTAssertEqual(try lab.nftList(in: lab.controller), "",
                           "fwctl \(args.joined(separator: " ")) with --netns changed the namespace it ran in",
                           file: file, line: line)
        }
        return r
    }

    /// `fwctl apply POLICY`, which must succeed.
    func apply(_ policy: String, from vantage: Lab.Vantage = .netnsName,
               file: StaticString = #filePath, line: UInt = #line) throws {
        let r = try fwctl("apply", policy, from: vantage, file: file, line: line)
        XCTAssertEqual(r.status, 0, "fwctl apply: \(r.stdout)\(r.stderr)", file: file, line: line)
    }

    /// Loads `fwctl compile POLICY` (resolved inside the sandbox) with `nft -f`, the way
    /// scripts/demo does: the compiled rules on their own, without fwctl's netlink path.
    func loadCompiled(_ policy: String, file: StaticString = #filePath, line: UInt = #line) throws {
        let compiled = try fwctl("compile", policy, from: .inside)
        XCTAssertEqual(compiled.status, 0, compiled.stderr, file: file, line: line)
        let load = try lab.nft(["-f", "-"], input: compiled.stdout)
        XCTAssertEqual(load.status, 0, "nft -f refused fwctl's rendering: \(load.stderr)", file: file, line: line)
    }

    /// The sandbox's ruleset is still `before`, byte for byte but for counter values:
    /// fwctl's own DNS queries from the sandbox pass (and count in) the allow rules.
    func assertRulesetUnchanged(since before: String, _ what: String,
                                file: StaticString = #filePath, line: UInt = #line) throws {
        XCTAssertEqual(RulesetText.withoutCounters(try lab.nftList()), RulesetText.withoutCounters(before),
                       "\(what) changed the ruleset", file: file, line: line)
    }

    /// A table that is not fwctl's: Docker's DNS NAT for 127.0.0.11, which must survive
    /// everything fwctl does.
    static let dockerTable = """
        table ip docker_nat {
        \tchain output {
        \t\ttype nat hook output priority -100; policy accept;
        \t\tip daddr 127.0.0.11 udp dport 53 counter packets 0 bytes 0 dnat to 127.0.0.11:40000
        \t\tip daddr 127.0.0.11 tcp dport 53 counter packets 0 bytes 0 dnat to 127.0.0.11:40001
        \t}
        }

        """

    /// Loads `dockerTable` into the sandbox and returns its listing.
    @discardableResult
    func loadDockerTable(file: StaticString = #filePath, line: UInt = #line) throws -> String {
        let load = try lab.nft(["-f", "-"], input: Self.dockerTable)
        XCTAssertEqual(load.status, 0, load.stderr, file: file, line: line)
        return try lab.nft(["list", "table", "ip", "docker_nat"]).stdout
    }
}

/// `nft list ruleset` text made comparable across applies.
enum RulesetText {
    private static let counters = try! Regex(#"counter packets \d+ bytes \d+"#)
    private static let applyMetadata = try! Regex(#"(?m)^\s*comment "fwctl .*\n"#)

    /// Every counter as plain `counter`, whatever traffic passed.
    static func withoutCounters(_ text: String) -> String {
        text.replacing(counters, with: "counter")
    }

    /// Without counters and without the apply metadata fwctl keeps on its table (a
    /// `comment "fwctl ..."` line: when, from which policy), which differs per apply.
    static func comparable(_ text: String) -> String {
        withoutCounters(text).replacing(applyMetadata, with: "")
    }
}
