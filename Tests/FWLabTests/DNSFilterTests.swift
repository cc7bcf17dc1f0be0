import Foundation
import XCTest
import FWTestSupport

/// The DNS filter (`dns.filter = true`) in the lab: every DNS query of the sandbox, to any
/// server, lands at watch's forwarder; allowed names are answered by the real servers and
/// enter the sets first; everything else gets NXDOMAIN.
final class DNSFilterTests: LabTestCase {
    var watch: Daemon?
    var dns: DynamicDNS!
    static let others = "198.51.100.10 blocked.lab.test\n2001:db8:99::10 blocked.lab.test\n203.0.113.10 api.lab.test\n"

    override func setUpWithError() throws {
        try super.setUpWithError()
        // A long TTL: watch's own refreshes stay out of the way; what the filter does shows.
        // The server also knows names the policy does not allow: only the filter keeps them out.
        dns = try lab.startDynamicDNS(hosts: Self.others + "203.0.113.180 app.lab.test\n", ttl: 300)
        var p = LabPolicy()
        p.servers = [DynamicDNS.address]
        p.allows = ["host = \"app.lab.test\"\nports = [\(DynamicDNS.port)]"]
        p.dnsExtra = "min_ttl = 1\nmax_ttl = 600\nfilter = true\nfilter_port = 5353\n"
        let path = try write(p)
        try apply(path)
        let log = lab.workDir.appendingPathComponent("watch.log").path
        let d = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, Paths.fwctl, "watch", path], log: log)
        watch = d
        for _ in 0..<150 where !d.output.contains("dns filter on") {
            guard d.isRunning else { throw LabError("fwctl watch exited: \(d.output)") }
            usleep(100_000)
        }
        guard d.output.contains("dns filter on") else { throw LabError("the filter did not start: \(d.output)") }
    }

    override func tearDown() {
        watch?.stop()
        watch = nil
        super.tearDown()
    }

    /// dig from the sandbox: the status and the answer's records.
    func dig(_ name: String, _ type: String = "A", server: String, tcp: Bool = false) throws -> (status: String, records: [String]) {
        let r = try lab.exec(in: lab.sandbox, [try tool("dig"), "@\(server)", name, type, "+time=2", "+tries=1", "+noall", "+comments", "+answer"]
                             + (tcp ? ["+tcp"] : []))
        let status = r.stdout.range(of: #"status: ([A-Z]+)"#, options: .regularExpression).map {
            String(r.stdout[$0].dropFirst("status: ".count))
        } ?? "no answer: \(r.stdout)\(r.stderr)"
        let records = r.stdout.split(separator: "\n").filter { !$0.hasPrefix(";") && !$0.isEmpty }
            .compactMap { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).last.map(String.init) }
        return (status, records)
    }

    func testAnAllowedNameIsAnsweredAndItsAddressConnectsAtOnce() throws {
        // The record changes; the sets still hold the old address (TTL 300).
        try dns.write(Self.others + "203.0.113.181 app.lab.test\n")
        dns.reload()
        XCTAssertNotEqual(try lab.tcp("203.0.113.181", DynamicDNS.port, timeout: 1).outcome, .connected)
        // Asked of the lab's resolver, as resolv.conf says: the forwarder answers.
        let answer = try dig("app.lab.test", server: Lab.Address.resolver)
        XCTAssertEqual(answer.status, "NOERROR")
        XCTAssertEqual(answer.records, ["203.0.113.181"])
        // No wait: the address entered the set before the reply was released.
        XCTAssertEqual(try lab.tcp("203.0.113.181", DynamicDNS.port, timeout: 1).outcome, .connected)
        // Over TCP as well.
        XCTAssertEqual(try dig("app.lab.test", server: Lab.Address.resolver, tcp: true).records, ["203.0.113.181"])
    }

    func testOtherNamesGetNXDOMAINFromEveryServer() throws {
        // The lab's resolver knows blocked.lab.test; through the filter it does not exist.
        XCTAssertEqual(try dig("blocked.lab.test", server: Lab.Address.resolver).status, "NXDOMAIN")
        XCTAssertEqual(try dig("blocked.lab.test", "AAAA", server: Lab.Address.resolver6).status, "NXDOMAIN")
        XCTAssertEqual(try dig("blocked.lab.test", server: Lab.Address.resolver, tcp: true).status, "NXDOMAIN")
        // A query sent straight to another server is filtered too: the rogue server would
        // say NXDOMAIN for app.lab.test (it does not know it) and an address for api.lab.test.
        XCTAssertEqual(try dig("api.lab.test", server: Lab.Address.rogueResolver).status, "NXDOMAIN")
        XCTAssertEqual(try dig("app.lab.test", server: Lab.Address.rogueResolver).records, ["203.0.113.180"])
        XCTAssertEqual(try dig("app.lab.test", server: "203.0.113.99").records, ["203.0.113.180"],
                       "a server outside the lab is never reached: the query goes to the forwarder")
    }

    func testATXTQueryWithALongRandomLabelGetsNXDOMAINAndNeverLeaves() throws {
        let label = (0..<63).map { _ in String("abcdefghijklmnopqrstuvwxyz0123456789".randomElement()!) }.joined()
        for type in ["TXT", "NULL", "ANY", "A"] {
            XCTAssertEqual(try dig("\(label).exfil.lab.test", type, server: Lab.Address.resolver).status, "NXDOMAIN", type)
        }
        // A label under the allowed name is another name: not allowed either.
        XCTAssertEqual(try dig("\(label).app.lab.test", "TXT", server: Lab.Address.resolver).status, "NXDOMAIN")
        XCTAssertFalse(dns.log.contains(label), "the label reached a DNS server")
    }

    func testFwctlsOwnQueriesAreExemptEvenWithoutTheForwarder() throws {
        watch?.stop()
        // Nothing answers at the filter's port now: a query of the sandbox gets nothing ...
        XCTAssertTrue(try dig("app.lab.test", server: DynamicDNS.address).status.hasPrefix("no answer"))
        // ... but apply's own lookups carry the mark and reach the server directly.
        let r = try fwctl("apply", lab.workDir.appendingPathComponent("policy.toml").path)
        XCTAssertEqual(r.status, 0, "apply with the filter on and no forwarder: \(r.stdout)\(r.stderr)")
        XCTAssertTrue(dns.log.contains("query[A] app.lab.test"), "the server did not see apply's query")
    }

    /// (Re)creates Docker's nat table for its embedded resolver.
    func dockerNAT() throws {
        let r = try lab.nft(["-f", "-"], input: """
            table ip docker_nat
            delete table ip docker_nat
            table ip docker_nat {
                chain output {
                    type nat hook output priority -100; policy accept;
                    ip daddr 127.0.0.11 udp dport 53 dnat to 127.0.0.11:5300
                    ip daddr 127.0.0.11 tcp dport 53 dnat to 127.0.0.11:5300
                }
            }
            """)
        XCTAssertEqual(r.status, 0, r.stderr)
    }

    /// Docker's embedded resolver, as a container on a user-defined network has it: a nat
    /// OUTPUT chain that DNATs 127.0.0.11:53 to the resolver's
    /// real port. The filter must still see every query, and its own must still get through.
    func testDockersEmbeddedResolverDoesNotLetQueriesPastTheFilter() throws {
        watch?.stop()
        try lab.exec(in: lab.sandbox, [try tool("ip"), "link", "set", "lo", "up"])
        let docker = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, "/usr/sbin/dnsmasq", "--keep-in-foreground",
                                 "--conf-file=/dev/null", "--pid-file=", "--no-resolv", "--no-hosts", "--bind-interfaces",
                                 "--listen-address=127.0.0.11", "--port=5300", "--local=/test/", "--log-facility=-", "--log-queries",
                                 "--host-record=app.lab.test,203.0.113.182", "--host-record=blocked.lab.test,198.51.100.10"],
                                log: lab.workDir.appendingPathComponent("docker-dns.log").path)
        defer { docker.stop() }
        var p = LabPolicy()
        p.servers = ["127.0.0.11"]
        p.allows = ["host = \"app.lab.test\"\nports = [\(DynamicDNS.port)]"]
        p.dnsExtra = "filter = true\nfilter_port = 5353\n"
        let path = try lab.write("docker.toml", p.toml)
        try dockerNAT()   // before apply too: apply's own lookups go to 127.0.0.11:53
        try apply(path)
        // Docker's chain registered after fwctl's: at the same priority the kernel would run
        // it first (a later hook goes before earlier ones of equal priority).
        try dockerNAT()
        let d = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, Paths.fwctl, "watch", path],
                           log: lab.workDir.appendingPathComponent("watch-docker.log").path)
        watch = d
        for _ in 0..<150 where !d.output.contains("dns filter on") { usleep(100_000) }
        XCTAssertTrue(d.output.contains("dns filter on"), d.output)

        XCTAssertEqual(try dig("blocked.lab.test", server: "127.0.0.11").status, "NXDOMAIN")
        XCTAssertEqual(try dig("blocked.lab.test", server: "127.0.0.11", tcp: true).status, "NXDOMAIN")
        XCTAssertFalse(docker.output.contains("blocked.lab.test"), "a query went past the filter to Docker's resolver: \(docker.output)")
        XCTAssertEqual(try dig("app.lab.test", server: "127.0.0.11").records, ["203.0.113.182"],
                       "the forwarder's own query must reach Docker's resolver")
        // Docker's real port on its own loopback address: only fwctl's marked queries get there.
        let direct = try lab.exec(in: lab.sandbox, [try tool("dig"), "@127.0.0.11", "-p", "5300", "direct.blocked.lab.test",
                                                    "+time=1", "+tries=1"])
        XCTAssertFalse(direct.stdout.contains("status:"), "the resolver's real port answered: \(direct.stdout)")
        XCTAssertFalse(docker.output.contains("direct.blocked.lab.test"), "a query reached Docker's resolver past the filter")
    }

    static let sandboxUser: UInt32 = 1000

    func asSandboxUser(_ script: String, seconds: Int = 30) throws -> ProcessResult {
        try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                       "--clear-groups", try tool("python3"), "-c", script], seconds: seconds)
    }

    /// The filter's port belongs to the forwarder: another user can neither share it while
    /// watch runs, nor answer the redirected queries when watch is gone.
    func testAnotherUserCannotTakeTheFiltersPort() throws {
        let share = try asSandboxUser("""
            import socket
            taken = []
            for opt in (socket.SO_REUSEADDR, socket.SO_REUSEPORT):
                for fam, host in ((socket.AF_INET, "127.0.0.1"), (socket.AF_INET6, "::1")):
                    s = socket.socket(fam, socket.SOCK_DGRAM)
                    s.setsockopt(socket.SOL_SOCKET, opt, 1)
                    try:
                        s.bind((host, 5353)); taken.append((opt, host))
                    except OSError:
                        pass
            print(taken)
            """)
        XCTAssertEqual(share.stdout, "[]\n", "the sandbox user shares the filter's port: \(share.stdout)\(share.stderr)")

        watch?.stop()
        // watch is gone: the sandbox user takes the port and answers whatever arrives.
        let squatter = try Daemon([try tool("ip"), "netns", "exec", lab.sandbox.name, try tool("setpriv"), "--reuid=1000", "--regid=1000",
                                   "--clear-groups", try tool("python3"), "-u", "-c", """
            import socket, select
            u = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); u.bind(("127.0.0.1", 5353))
            t = socket.socket(); t.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1); t.bind(("127.0.0.1", 5353)); t.listen(8)
            print("ready", flush=True)
            while True:
                r, _, _ = select.select([u, t], [], [])
                for s in r:
                    if s is u:
                        data, peer = u.recvfrom(2048); print("got udp", flush=True)
                        u.sendto(data[:2] + b"\\x81\\x80" + data[4:], peer)
                    else:
                        c, _ = t.accept(); print("got tcp", flush=True); c.close()
            """], log: lab.workDir.appendingPathComponent("squatter.log").path)
        defer { squatter.stop() }
        for _ in 0..<100 where !squatter.output.contains("ready") { usleep(20_000) }
        XCTAssertTrue(squatter.output.contains("ready"), squatter.output)
        XCTAssertTrue(try dig("app.lab.test", server: Lab.Address.resolver).status.hasPrefix("no answer"))
        XCTAssertTrue(try dig("app.lab.test", server: Lab.Address.resolver, tcp: true).status.hasPrefix("no answer"))
        XCTAssertFalse(squatter.output.contains("got"), "the redirected queries reached another user's socket: \(squatter.output)")
    }

    /// A UDP flow of fwctl's own (marked, so never redirected) that another user picks up:
    /// the same source port, right after, as an ephemeral port can be by chance. Marked
    /// flows live in a conntrack zone of their own (dns_zone), so the user's packets are a
    /// new flow, redirected to the filter like any other: never on to the resolver, and no
    /// EPERM either (the drop before `established` is what catches them when they do meet
    /// an old flow: without the zone, the query fails).
    func testAnotherUsersQueryOnTheSourcePortOfFwctlsFlowGoesToTheFilter() throws {
        let port = 40000 + Int.random(in: 0..<20000)
        let label = "reuse\(UInt32.random(in: 0 ... .max))"
        let query = """
            def query(name):
                q = b"\\x12\\x34\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00"
                for label in name.split("."):
                    q += bytes([len(label)]) + label.encode()
                return q + b"\\x00\\x00\\x01\\x00\\x01"
            """
        // As root, with fwctl's mark: what the forwarder's own upstream query looks like.
        let marked = try lab.exec(in: lab.sandbox, [try tool("python3"), "-c", query + "\n" + """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.setsockopt(socket.SOL_SOCKET, 36, 0x46574453)
            s.bind(("0.0.0.0", \(port)))
            s.settimeout(2)
            s.sendto(query("app.lab.test"), ("\(DynamicDNS.address)", 53))
            s.recvfrom(2048)
            print("answered")
            """])
        XCTAssertEqual(marked.stdout, "answered\n", marked.stderr)
        // The sandbox user, same source port, same server, unmarked: a name not allowed,
        // then an allowed one. Prints each answer's rcode, or the error.
        let reuse = try asSandboxUser(query + "\n" + """
            import socket
            s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            s.bind(("0.0.0.0", \(port)))
            s.settimeout(2)
            for name in ["\(label).exfil.lab.test", "app.lab.test"]:
                try:
                    s.sendto(query(name), ("\(DynamicDNS.address)", 53))
                    print("rcode", s.recvfrom(2048)[0][3] & 15)
                except OSError as e:
                    print("error", e.errno)
            """)
        XCTAssertEqual(reuse.stdout, "rcode 3\nrcode 0\n", "the filter answers on the reused port: \(reuse.stderr)")
        usleep(300_000)
        XCTAssertFalse(dns.log.contains(label), "a query on fwctl's flow reached the server: \(reuse.stdout)\(reuse.stderr)")
    }

    /// Slow TCP clients cannot hold the forwarder: connections are capped, UDP goes on.
    func testManyTCPConnectionsDoNotStopTheForwarder() throws {
        let r = try asSandboxUser("""
            import socket, time
            held = []
            for i in range(100):
                try:
                    c = socket.create_connection(("127.0.0.1", 5353), timeout=1); c.send(b"\\x00"); held.append(c)
                except OSError:
                    pass
            time.sleep(0.5)
            alive = 0
            for c in held:
                c.setblocking(False)
                try:
                    alive += 0 if c.recv(1) == b"" else 1
                except BlockingIOError:
                    alive += 1
                except OSError:
                    pass
            print(alive)
            """)
        let alive = Int(r.stdout.trimmingCharacters(in: .whitespacesAndNewlines)) ?? -1
        XCTAssertTrue((1...64).contains(alive), "open TCP connections to the forwarder: \(r.stdout)\(r.stderr)")
        XCTAssertEqual(try dig("app.lab.test", server: Lab.Address.resolver).records, ["203.0.113.180"])
        XCTAssertTrue(watch?.isRunning ?? false)
    }

    func testMalformedPacketsDoNotStopTheForwarder() throws {
        let script = """
            import os, socket
            payloads = [b"", b"\\x00", b"\\x12\\x34", os.urandom(11), b"\\x12\\x34" + b"\\x00" * 10,
                        b"\\xab\\xcd\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\x3f" + b"a" * 20,
                        b"\\xab\\xcd\\x01\\x00\\x00\\x01\\x00\\x00\\x00\\x00\\x00\\x00\\xc0\\x0c\\x00\\x01\\x00\\x01",
                        b"\\xab\\xcd\\x81\\x80" + os.urandom(40)] + [os.urandom(n) for n in range(12, 600, 7)]
            for host in ["127.0.0.1", "192.0.2.1", "198.51.100.10"]:
                for p in payloads:
                    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
                    s.sendto(p, (host, 53 if host != "127.0.0.1" else 5353))
                    s.close()
                t = socket.create_connection((host, 53), timeout=2)
                t.sendall(b"\\x00\\x05hello" + b"\\x00\\x02\\xff")
                t.close()
            print("sent")
            """
        let r = try lab.exec(in: lab.sandbox, [try tool("python3"), "-c", script])
        XCTAssertEqual(r.status, 0, r.stderr)
        XCTAssertTrue(watch?.isRunning ?? false, "the forwarder stopped: \(watch?.output ?? "")")
        XCTAssertEqual(try dig("app.lab.test", server: Lab.Address.resolver).records, ["203.0.113.180"])
        XCTAssertEqual(try dig("blocked.lab.test", server: Lab.Address.resolver).status, "NXDOMAIN")
    }
}
