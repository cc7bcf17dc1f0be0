import Foundation
import XCTest
import FWTestSupport

/// `--backend iptables` in the lab: the same policies, the same reachability matrix, through
/// iptables-restore / ip6tables-restore and ipset, once per flavour this machine has
/// (legacy and nft). Everything else in the tables (a Docker-like rule) must survive.
final class IptablesBackendTests: LabTestCase {
    /// The flavours installed here; a test runs its body once for each, in a fresh lab.
    var flavours: [String] {
        ["legacy", "nft"].filter { FileManager.default.isExecutableFile(atPath: "/usr/sbin/iptables-\($0)-restore") }
    }

    /// Runs `body` for every flavour, each in a lab of its own (the first one is setUp's).
    func eachFlavour(_ body: (String) throws -> Void) throws {
        let all = flavours
        guard !all.isEmpty else { throw XCTSkip("no iptables installed") }
        for (i, f) in all.enumerated() {
            if i > 0 { lab.destroy(); lab = try Lab() }
            current = f
            try body(f)
        }
        current = nil
    }

    /// The flavour a failure happened in, named in its message.
    var current: String?

    override func recordFailure(withDescription description: String, inFile filePath: String, atLine lineNumber: Int, expected: Bool) {
        super.recordFailure(withDescription: current.map { "[iptables-\($0)] " } .map { $0 + description } ?? description,
                            inFile: filePath, atLine: lineNumber, expected: expected)
    }

    /// fwctl with `--backend iptables` in the flavour, from the controller namespace.
    @discardableResult
    func ipt(_ flavour: String, _ args: String...) throws -> ProcessResult {
        try lab.exec(in: lab.controller, ["/usr/bin/env", "FWCTL_IPTABLES_FLAVOUR=\(flavour)", Paths.fwctl]
                     + args + ["--netns", lab.sandbox.name, "--backend", "iptables"], seconds: 60)
    }

    func save(_ flavour: String, v6: Bool = false) throws -> String {
        let tool = v6 ? "ip6tables-\(flavour)-save" : "iptables-\(flavour)-save"
        return try lab.exec(in: lab.sandbox, ["/usr/sbin/\(tool)"]).stdout
            .split(separator: "\n").filter { !$0.hasPrefix("#") }.joined(separator: "\n")
    }

    /// What must be equal across applies: the rules without counters and the apply record.
    func comparable(_ text: String) -> String {
        text.replacing(try! Regex(#"\[\d+:\d+\]"#), with: "[0:0]").replacing(try! Regex(#"--comment "fwctl-record: [^"]*""#), with: "")
    }

    /// What a save says that matters: rules, chains of anyone's own and non-default
    /// policies; an empty table (built-in chains accepting, no rules) counts as none.
    func meaningful(_ text: String) -> [String] {
        comparable(text).split(separator: "\n").map(String.init).filter { line in
            !(line.hasPrefix("*") || line == "COMMIT" || (line.hasPrefix(":") && line.contains(" ACCEPT [")
                && ["INPUT", "OUTPUT", "FORWARD", "PREROUTING", "POSTROUTING"].contains(String(line.dropFirst().prefix { $0 != " " }))))
        }
    }

    func ipsets() throws -> String { try lab.exec(in: lab.sandbox, ["/usr/sbin/ipset", "list", "-n"]).stdout }

    /// A foreign rule in OUTPUT (filter) and Docker's DNS NAT (nat), in the flavour.
    func loadForeignRules(_ flavour: String) throws {
        let r = try lab.exec(in: lab.sandbox, ["/usr/sbin/iptables-\(flavour)-restore", "--noflush"], input: """
            *filter
            -A OUTPUT -d 192.0.2.99/32 -p tcp -m tcp --dport 9 -j ACCEPT
            COMMIT
            *nat
            :DOCKER_OUTPUT - [0:0]
            -A OUTPUT -d 127.0.0.11/32 -j DOCKER_OUTPUT
            -A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40000
            COMMIT

            """)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    // MARK: -

    func testTheReachabilityMatrixHolds() throws {
        try eachFlavour { f in
            let r = try ipt(f, "apply", try write(LabPolicy()))
            XCTAssertEqual(r.status, 0, "\(f): \(r.stdout)\(r.stderr)")
            XCTAssertTrue(r.stderr.contains("iptables backend: iptables-\(f)"), "the flavour is named: \(r.stderr)")
            XCTAssertEqual(try lab.nft(["list", "table", "inet", "fwctl"]).status == 0, false, "no nft table of fwctl's")
            try assertLabPolicyEnforced()
            XCTAssertEqual(try ipt(f, "diff", try write(LabPolicy()), "--exit-code").status, 0, "diff after apply is empty")
        }
    }

    func testHostNetworkAndDropEgress() throws {
        try eachFlavour { f in
            XCTAssertEqual(try ipt(f, "apply", try write(LabPolicy(hostNetwork: true))).status, 0)
            try assertLabPolicyEnforced(hostNetwork: true)
            XCTAssertEqual(try ipt(f, "apply", try write(LabPolicy(egress: "drop"))).status, 0)
            try expectTCP("api.lab.test", 443, .connected)
            try expectTCP(A.api, 80, .timeout, timeout: 1)
            try expectTCP(A.api6, 80, .timeout, timeout: 1)
        }
    }

    func testProxyUserAndTransparentRedirect() throws {
        try eachFlavour { f in
            let path = try lab.write("transparent.toml", LabPolicy(allows: ["host = \"ssh.lab.test\"\nports = [22]",
                                                                           "host = \"api.lab.test\"\nvia = \"proxy\"\nports = [443]"]).toml
                                     + "\n[proxy]\nlisten = \"127.0.0.1:3128\"\nuser = 65534\ntransparent = true\ntransparent_port = 3130\n")
            let r = try ipt(f, "apply", path)
            XCTAssertEqual(r.status, 0, r.stderr)
            for family in [Lab.Family.v4, .v6] {
                XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: family, user: 65534).outcome, .connected,
                               "the proxy user reaches a proxied port (\(family))")
            }
            XCTAssertEqual(try lab.tcp("api.lab.test", 80, timeout: Self.fast, user: 65534).outcome, .refused)
            // Root's 443 is redirected to the (absent) local proxy: refused at once, not sent out.
            let listener = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, try tool("python3"), "-u", "-c", """
                import socket
                s = socket.socket(socket.AF_INET6)
                s.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
                s.bind(("::", 3130)); s.listen(16); print("ready")
                while True:
                    c, a = s.accept(); print("accepted", a[0]); c.close()
                """], log: lab.workDir.appendingPathComponent("listener-\(f).log").path)
            defer { listener.stop() }
            for _ in 0..<100 where !listener.output.contains("ready") { usleep(20_000) }
            XCTAssertEqual(try lab.tcp("blocked.lab.test", 443, family: .v4).outcome, .connected)
            XCTAssertEqual(try lab.tcp("api.lab.test", 443, family: .v6).outcome, .connected)
            for _ in 0..<50 where listener.output.components(separatedBy: "accepted").count < 3 { usleep(20_000) }
            XCTAssertEqual(listener.output.components(separatedBy: "accepted").count - 1, 2, "redirected: \(listener.output)")
            XCTAssertEqual(try lab.tcp("ssh.lab.test", 22).outcome, .connected, "direct allows are not redirected")
            XCTAssertEqual(try ipt(f, "diff", path, "--exit-code").status, 0)
        }
    }

    func testForeignRulesSurviveApplyAndResetRemovesExactlyFwctls() throws {
        try eachFlavour { f in
            try loadForeignRules(f)
            let before4 = try save(f), before6 = try save(f, v6: true), setsBefore = try ipsets()
            XCTAssertEqual(try ipt(f, "apply", try write(LabPolicy())).status, 0)
            let applied = try save(f)
            XCTAssertTrue(applied.contains("-A OUTPUT -d 192.0.2.99/32 -p tcp -m tcp --dport 9 -j ACCEPT"), applied)
            XCTAssertTrue(applied.contains("-A DOCKER_OUTPUT -d 127.0.0.11/32 -p udp -m udp --dport 53 -j DNAT --to-destination 127.0.0.11:40000"))
            XCTAssertEqual(applied.components(separatedBy: "-A OUTPUT -j fwctl-output").count - 1, 1, "exactly one jump")
            let reset = try ipt(f, "reset")
            XCTAssertEqual(reset.status, 0, reset.stderr)
            XCTAssertEqual(meaningful(try save(f)), meaningful(before4), "reset left something or removed too much")
            XCTAssertEqual(meaningful(try save(f, v6: true)), meaningful(before6))
            XCTAssertEqual(try ipsets(), setsBefore)
        }
    }

    func testReapplyIsIdempotentAndDiffShowsAChange() throws {
        try eachFlavour { f in
            let policy = try write(LabPolicy())
            XCTAssertEqual(try ipt(f, "apply", policy).status, 0)
            let first = comparable(try save(f)), first6 = comparable(try save(f, v6: true))
            XCTAssertEqual(try ipt(f, "apply", policy).status, 0)
            XCTAssertEqual(comparable(try save(f)), first, "a second apply changed the rules")
            XCTAssertEqual(comparable(try save(f, v6: true)), first6)

            let changed = try write(LabPolicy().allowing("host = \"api.lab.test\"\nports = [8443]"), as: "changed.toml")
            let diff = try ipt(f, "diff", changed, "--exit-code")
            XCTAssertEqual(diff.status, 1, diff.stdout + diff.stderr)
            XCTAssertTrue(diff.stdout.contains("+-A fwctl-output") && diff.stdout.contains("8443"), diff.stdout)
            XCTAssertEqual(try ipt(f, "apply", changed, "--dry-run").stdout, diff.stdout, "dry-run shows the same diff")
            XCTAssertEqual(comparable(try save(f)), first, "dry-run changed the rules")

            // Auto does not mix backends: fwctl's iptables rules are in place.
            let auto = try lab.exec(in: lab.controller, [Paths.fwctl, "apply", policy, "--netns", lab.sandbox.name])
            XCTAssertEqual(auto.status, 2, auto.stdout + auto.stderr)
            XCTAssertTrue(auto.stderr.contains("--backend iptables"), auto.stderr)
            XCTAssertFalse(try lab.nftList().contains("table inet fwctl"), "auto applied with nft anyway")
            // status and reset find fwctl's rules in either backend.
            let status = try lab.exec(in: lab.controller, [Paths.fwctl, "status", "--netns", lab.sandbox.name])
            XCTAssertEqual(status.status, 0, status.stderr)
            XCTAssertTrue(status.stdout.contains("with iptables-\(f)") && status.stdout.contains("-A fwctl-output"), status.stdout)
        }
    }

    /// The DNS filter's conntrack zone for fwctl's marked flows lives in the raw table: one
    /// chain, one jump from raw OUTPUT, the CT target; re-apply keeps it as it is and reset
    /// takes it away again.
    func testTheDNSFiltersZoneIsInTheRawTable() throws {
        try eachFlavour { f in
            var p = LabPolicy()
            p.dnsExtra = "filter = true\nfilter_port = 5300"
            let policy = try write(p)
            let before4 = try save(f), before6 = try save(f, v6: true)
            let r = try ipt(f, "apply", policy)
            XCTAssertEqual(r.status, 0, r.stderr)
            for v6 in [false, true] {
                let saved = try save(f, v6: v6)
                let raw = saved.components(separatedBy: "*raw").dropFirst().first?.components(separatedBy: "COMMIT").first ?? ""
                XCTAssertEqual(raw.components(separatedBy: "-A OUTPUT -j fwctl-dns_zone").count - 1, 1, "exactly one jump:\n\(saved)")
                XCTAssertTrue(raw.contains("-A fwctl-dns_zone -m mark --mark 0x46574453 -j CT --zone-orig 18007"), saved)
            }
            let first = comparable(try save(f))
            XCTAssertEqual(try ipt(f, "apply", policy).status, 0)
            XCTAssertEqual(comparable(try save(f)), first, "a second apply changed the rules")
            XCTAssertEqual(try ipt(f, "diff", policy, "--exit-code").status, 0)
            XCTAssertEqual(try ipt(f, "reset").status, 0)
            XCTAssertEqual(meaningful(try save(f)), meaningful(before4), "reset left something in raw, or elsewhere")
            XCTAssertEqual(meaningful(try save(f, v6: true)), meaningful(before6))
        }
    }

    func testAFailedApplyChangesNothing() throws {
        try eachFlavour { f in
            XCTAssertEqual(try ipt(f, "apply", try write(LabPolicy())).status, 0)
            let before4 = comparable(try save(f)), before6 = comparable(try save(f, v6: true)), sets = try ipsets()
            // A set of fwctl's name but another type is in the way of the changed policy's new set.
            let conflict = try lab.exec(in: lab.sandbox, ["/usr/sbin/ipset", "create", "fwctl-names4_tcp_8443", "hash:net"])
            XCTAssertEqual(conflict.status, 0, conflict.stderr)
            let changed = try write(LabPolicy().allowing("host = \"api.lab.test\"\nports = [8443]"), as: "changed.toml")
            let r = try ipt(f, "apply", changed)
            XCTAssertEqual(r.status, 4, r.stdout + r.stderr)
            XCTAssertTrue(r.stderr.contains("fwctl-names4_tcp_8443") && r.stderr.contains("nothing was changed"), r.stderr)
            XCTAssertEqual(comparable(try save(f)), before4)
            XCTAssertEqual(comparable(try save(f, v6: true)), before6)
            XCTAssertEqual(Set(try ipsets().split(separator: "\n")), Set((sets + "fwctl-names4_tcp_8443").split(separator: "\n")),
                           "only the conflicting set was added (by the test)")
            try assertLabPolicyEnforced()
        }
    }
}
