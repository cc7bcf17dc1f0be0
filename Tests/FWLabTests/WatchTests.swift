import Foundation
import XCTest
import FWTestSupport
#if canImport(Glibc)
import Glibc
#endif

/// `fwctl watch` in the lab, against a DNS server whose records change during the test
/// (Lab.startDynamicDNS: dnsmasq answering from a hosts file, TTL 2 s). Every check is a
/// real TCP connection from the sandbox to an address of the rotating pool.
final class WatchTests: LabTestCase {
    static let ttl = 2
    var watch: Daemon?

    override func tearDown() {
        watch?.stop()
        watch = nil
        super.tearDown()
    }

    /// A policy allowing `names` on the pool's port, resolved through the dynamic server.
    func policy(_ names: [String], filter: Bool = false, maxTTL: Int = 30, extra: [String] = []) -> LabPolicy {
        var p = LabPolicy()
        p.servers = [DynamicDNS.address, Lab.Address.resolver]
        p.allows = names.map { "host = \"\($0)\"\nports = [\(DynamicDNS.port)]" } + extra
        p.dnsExtra = "min_ttl = 1\nmax_ttl = \(maxTTL)\nfilter = \(filter)\nfilter_port = 5353\n"
        return p
    }

    /// Applies the policy and starts watch (JSON lines); returns once its first round is done.
    func startWatch(_ policy: LabPolicy, arguments: [String] = []) throws {
        let path = try write(policy)
        try apply(path)
        let d = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, Paths.fwctl, "watch", path, "--json"] + arguments,
                           log: watchLog)
        watch = d
        try waitFor("watch to start", seconds: 15) {
            if !d.isRunning { throw LabError("fwctl watch exited: \(d.output)") }
            return d.output.contains("\"message\":\"watching")
        }
    }

    func connects(_ address: String) throws -> Bool {
        try lab.tcp(address, DynamicDNS.port, timeout: 1).outcome == .connected
    }

    /// Polls every 100 ms; fails the test (throws) after `seconds`. Returns the time it took.
    @discardableResult
    func waitFor(_ what: String, seconds: Double, _ condition: () throws -> Bool) throws -> Double {
        let start = Date()
        while Date().timeIntervalSince(start) < seconds {
            if try condition() { return Date().timeIntervalSince(start) }
            usleep(100_000)
        }
        throw LabError("\(what): not within \(seconds) s. watch: \(watch?.output.suffix(3000) ?? "")")
    }

    var watchLog: String { lab.workDir.appendingPathComponent("watch.log").path }
    var events: [[String: Any]] { jsonLines(watchLog) }

    func setElements(_ set: String) throws -> String {
        try lab.nft(["list", "set", "inet", "fwctl", set]).stdout
    }

    // MARK: - Tests

    func testANewAddressIsAllowedWithinTheTTLAndTheOldOneGoesAfterItsGrace() throws {
        let dns = try lab.startDynamicDNS(hosts: "203.0.113.130 rotate.lab.test\n", ttl: Self.ttl)
        try startWatch(policy(["rotate.lab.test"]))
        XCTAssertTrue(try connects("203.0.113.130"))
        XCTAssertFalse(try connects("203.0.113.131"), "not in the answer yet")
        XCTAssertTrue(try setElements("names4_tcp_9443").contains("203.0.113.130 timeout"), "watch gave apply's element a timeout")

        try dns.write("203.0.113.131 rotate.lab.test\n")
        dns.reload()
        try waitFor("the new address allowed within TTL + 2 s", seconds: Double(Self.ttl) + 2) { try connects("203.0.113.131") }
        // The old address left the answer in the round that brought the new one; it stays
        // for one more TTL of grace (connections being set up with it still work), then goes.
        XCTAssertTrue(try connects("203.0.113.130"), "the old address went at once: no grace")
        try waitFor("the old address refused after its grace", seconds: 2 * Double(Self.ttl) + 2) {
            try !connects("203.0.113.130")
        }
        XCTAssertTrue(try connects("203.0.113.131"))
        let change = events.first { ($0["added"] as? [String]) == ["203.0.113.131"] }
        XCTAssertEqual(change?["removed"] as? [String], ["203.0.113.130"], "the change is logged: \(events)")
        XCTAssertEqual(change?["name"] as? String, "rotate.lab.test")
        XCTAssertEqual(change?["ttl"] as? Int, Self.ttl)
        XCTAssertTrue(watch?.isRunning ?? false)
    }

    /// An answer that never changes, renewed every second with the same timeout: the
    /// element must never run out between rounds (a kernel restarts an element's clock only
    /// when told its expiry, not for the same timeout again).
    func testAnUnchangedAddressNeverLeavesTheSet() throws {
        _ = try lab.startDynamicDNS(hosts: "203.0.113.190 steady.lab.test\n", ttl: 1)
        try startWatch(policy(["steady.lab.test"]))
        let script = """
            import subprocess, time
            missing = 0
            end = time.time() + 8
            while time.time() < end:
                out = subprocess.run(["nft", "list", "set", "inet", "fwctl", "names4_tcp_9443"], capture_output=True, text=True).stdout
                if "203.0.113.190" not in out: missing += 1
                time.sleep(0.05)
            print(missing)
            """
        let r = try lab.exec(in: lab.sandbox, [try tool("python3"), "-c", script], seconds: 30)
        XCTAssertEqual(r.stdout, "0\n", "samples without the address: \(r.stdout)\(r.stderr)\n\(watch?.output.suffix(2000) ?? "")")
    }

    func testAServerThatStopsAnsweringLeavesTheLastGoodAddresses() throws {
        let dns = try lab.startDynamicDNS(hosts: "203.0.113.140 steady.lab.test\n2001:db8:99::140 steady.lab.test\n", ttl: Self.ttl)
        // The kernel's way for older kernels: renewal by delete and re-add in one batch.
        var p = policy(["steady.lab.test"])
        p.servers = [DynamicDNS.address]
        try startWatch(p, arguments: ["--renew-by-replace"])
        dns.pause()
        defer { dns.resume() }
        // Well past two TTLs (when the elements would have expired without renewal).
        sleep(UInt32(3 * Self.ttl + 2))
        XCTAssertTrue(try connects("203.0.113.140"), "the last good IPv4 address must stay allowed")
        XCTAssertTrue(try connects("2001:db8:99::140"), "the last good IPv6 address must stay allowed")
        XCTAssertTrue(watch?.isRunning ?? false, "watch must keep running")
        XCTAssertTrue(events.contains { $0["health"] as? String == "stale" }, "the failure is logged: \(events)")
    }

    func testACNAMETargetChange() throws {
        let dns = try lab.startDynamicDNS(hosts: "203.0.113.150 edge1.lab.test\n203.0.113.151 edge2.lab.test\n", ttl: Self.ttl,
                                          cnames: ["alias.lab.test,edge1.lab.test"])
        try startWatch(policy(["alias.lab.test"]))
        XCTAssertTrue(try connects("203.0.113.150"))
        XCTAssertFalse(try connects("203.0.113.151"))
        try dns.restart(cnames: ["alias.lab.test,edge2.lab.test"])
        try waitFor("the new CNAME target's address allowed", seconds: Double(Self.ttl) + 2) { try connects("203.0.113.151") }
        try waitFor("the old target's address refused", seconds: 3 * Double(Self.ttl) + 2) { try !connects("203.0.113.150") }
    }

    func testFiftyRotatingAddresses() throws {
        let first = (160..<210).map { "203.0.113.\($0)" }
        let second = (1...50).map { "2001:db8:99::\(String($0, radix: 16))" }
        let dns = try lab.startDynamicDNS(hosts: first.map { "\($0) pool.lab.test\n" }.joined(), ttl: Self.ttl)
        try startWatch(policy(["pool.lab.test"]))
        let v4 = try setElements("names4_tcp_9443")
        for a in first { XCTAssertTrue(v4.contains(a), "\(a) missing from the set") }
        XCTAssertTrue(try connects(first[0]))
        XCTAssertTrue(try connects(first[49]))

        try dns.write(second.map { "\($0) pool.lab.test\n" }.joined())
        dns.reload()
        try waitFor("all 50 new addresses in the set", seconds: Double(Self.ttl) + 2) {
            let v6 = try setElements("names6_tcp_9443")
            return second.allSatisfy { v6.contains($0 + " ") || v6.contains($0 + ",") }
        }
        XCTAssertTrue(try connects(second[0]))
        XCTAssertTrue(try connects(second[49]))
        try waitFor("the 50 old addresses gone", seconds: 3 * Double(Self.ttl) + 2) {
            let v4 = try setElements("names4_tcp_9443")
            return !first.contains { v4.contains($0) }
        }
        XCTAssertFalse(try connects(first[0]))
    }

    func testStatusShowsTheSummaryAndSignalsWork() throws {
        _ = try lab.startDynamicDNS(hosts: "203.0.113.175 sum.lab.test\n", ttl: Self.ttl)
        try startWatch(policy(["sum.lab.test"]))
        let status = try fwctl("status", "--json")
        let json = try XCTUnwrap(try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any], status.stdout)
        let watchState = try XCTUnwrap(json["watch"] as? [String: Any], "status --json has no watch: \(status.stdout.prefix(2000))")
        let names = try XCTUnwrap(watchState["names"] as? [[String: Any]])
        XCTAssertEqual(names.first?["name"] as? String, "sum.lab.test")
        XCTAssertEqual(names.first?["addresses"] as? [String], ["203.0.113.175"])
        XCTAssertTrue(try fwctl("status").stdout.contains("ok      sum.lab.test"))

        watch?.signal(SIGUSR1)
        try waitFor("a summary on SIGUSR1", seconds: 5) { events.contains { $0["event"] as? String == "summary" } }
        watch?.signal(SIGTERM)
        try waitFor("watch to stop on SIGTERM", seconds: 5) { !(watch?.isRunning ?? false) }
        XCTAssertTrue(events.contains { $0["message"] as? String == "stopped" }, "a clean stop: \(events)")
        XCTAssertNil((try JSONSerialization.jsonObject(with: Data(try fwctl("status", "--json").stdout.utf8)) as? [String: Any])?["watch"] as? [String: Any],
                     "status still shows a watch that stopped")
    }

    func testANewApplyIsFollowed() throws {
        _ = try lab.startDynamicDNS(hosts: "203.0.113.170 one.lab.test\n203.0.113.171 two.lab.test\n", ttl: Self.ttl)
        try startWatch(policy(["one.lab.test"]))
        XCTAssertFalse(try connects("203.0.113.171"))
        try apply(try write(policy(["one.lab.test", "two.lab.test"])))
        try waitFor("watch follows the new policy", seconds: 10) {
            events.contains { ($0["message"] as? String)?.hasPrefix("following the new policy") ?? false }
        }
        XCTAssertTrue(try connects("203.0.113.171"))
        try waitFor("two.lab.test's element gets a timeout from watch", seconds: 5) {
            try setElements("names4_tcp_9443").contains("203.0.113.171 timeout")
        }

        // `fwctl reset`: watch waits (and writes nothing) until a table is back, then takes it over.
        XCTAssertEqual(try fwctl("reset").status, 0)
        try waitFor("watch notices the reset", seconds: 5) {
            events.contains { ($0["message"] as? String)?.contains("is gone") ?? false }
        }
        sleep(UInt32(Self.ttl + 1))
        XCTAssertTrue(watch?.isRunning ?? false)
        XCTAssertTrue(try lab.nftList().isEmpty, "watch recreated something after the reset")
        XCTAssertFalse(events.contains { $0["event"] as? String == "warning" && (($0["message"] as? String)?.contains("not updated") ?? false) },
                       "watch tried to write into the missing table: \(events)")
        try apply(try write(policy(["one.lab.test", "two.lab.test"])))
        try waitFor("watch takes the table over again", seconds: 10) {
            try setElements("names4_tcp_9443").contains("203.0.113.170 timeout")
        }
    }
}

