import Foundation
import XCTest
import FWTestSupport
#if canImport(Glibc)
import Glibc
#endif

// The attack suite: every known way around an egress control, tried from inside a lab
// sandbox against fwctl's firewall, watch and proxy; each attempt must be blocked, and
// nothing may reach the upstream.

/// The set-up every attack test shares, after UpTests (Tests/FWLabTests/UpTests.swift): a
/// fresh lab (Tests/FWTestSupport/Lab.swift), `fwctl up` with the DNS filter on, and the
/// sandbox user (uid 1000) as the attacker.
///
/// - DNS: the lab's dynamic dnsmasq (`DynamicDNS`, on 198.51.100.53, `--log-queries`) is
///   the policy's one server; it knows allowed names, names the policy does not allow
///   (evil.lab.test, example.test, ...) and allowed names that point at loopback, the
///   metadata address, an IPv4-mapped loopback and 0.0.0.0.
/// - The upstream (`AttackScripts.upstream`, outside, as root) serves TLS on 443 and plain
///   HTTP on 80 at the allowed address (203.0.113.40, 2001:db8:40::40), at an address
///   only names the policy does not allow point to (`Address.evil`, also TCP 22 and UDP
///   443) and at 169.254.169.254; it records every connection, byte, ClientHello and
///   request. A second copy (the *victim*) listens on the sandbox's own 127.0.0.1 and ::1
///   (80 and 443), where the proxy would land if its dial guard let an allowed name that
///   resolves to loopback through (the kernel accepts loopback for everyone).
/// - An nft table in the outside namespace counts, in prerouting, every packet that
///   arrives from the sandbox for an address or protocol nothing may reach (`counters()`).
/// - The policy: anthropic.lab.test terminated (methods, key injection), splice.lab.test
///   spliced, plain.lab.test (plain HTTP on 80, terminated on 443, GET only),
///   *.example.test spliced with api.example.test terminated under it (GET /v1/* only),
///   and loop/loop6/meta/mapped/zero.lab.test (guarded addresses); transparent mode; the
///   DNS filter.
class AttackLab: XCTestCase {
    static let proxyUser: UInt32 = 65534
    static let sandboxUser: UInt32 = 1000

    enum Address {
        /// Every allowed name (anthropic, splice, plain, www/api.example.test).
        static let good = Lab.Address.upstream
        static let good6 = Lab.Address.upstream6
        /// Names the policy does not allow (evil.lab.test, example.test, ...).
        static let evil = "203.0.113.41"
        static let evil6 = "2001:db8:41::41"
        static let metadata = "169.254.169.254"
    }

    let secret = "sk-ant-real-attack-key-0123456789abcdef"
    let placeholder = "sk-ant-placeholder-attack"
    var keyHeader: String { "x-api-key: \(placeholder)" }

    var lab: Lab!
    var dns: DynamicDNS!
    private var daemons: [Daemon] = []
    private var netnsInode: UInt64 = 0

    static let hosts = """
        203.0.113.40 anthropic.lab.test splice.lab.test plain.lab.test www.example.test api.example.test
        2001:db8:40::40 anthropic.lab.test splice.lab.test plain.lab.test www.example.test api.example.test
        203.0.113.41 evil.lab.test example.test evil-example.test example.test.evil.test www.example.test.evil.test
        2001:db8:41::41 evil.lab.test example.test evil-example.test example.test.evil.test www.example.test.evil.test
        127.0.0.1 loop.lab.test
        ::1 loop6.lab.test
        169.254.169.254 meta.lab.test
        ::ffff:127.0.0.1 mapped.lab.test
        0.0.0.0 zero.lab.test

        """

    static let certificateNames = [
        "anthropic.lab.test", "splice.lab.test", "plain.lab.test", "*.example.test", "example.test", "evil-example.test",
        "example.test.evil.test", "evil.lab.test", "loop.lab.test", "loop6.lab.test", "meta.lab.test", "mapped.lab.test",
        "zero.lab.test", "localhost",
    ]

    func work(_ name: String) -> String { lab.workDir.appendingPathComponent(name).path }

    override func setUpWithError() throws {
        try super.setUpWithError()
        lab = try Lab()
        _ = try tool("curl")
        _ = try tool("setpriv")
        var st = stat()
        _ = stat("/run/netns/\(lab.sandbox.name)", &st)
        netnsInode = UInt64(st.st_ino)

        dns = try lab.startDynamicDNS(hosts: Self.hosts, ttl: 300)
        try ip(lab.outside, """
            addr add \(Address.evil)/32 dev lo
            addr add \(Address.evil6)/128 dev lo nodad
            addr add \(Address.metadata)/32 dev lo
            """)
        let counting = try lab.nft(["-f", "-"], input: Self.countersTable, in: lab.outside)
        guard counting.status == 0 else { throw LabError("the outside counters: \(counting.stderr)") }

        let certs = lab.workDir.appendingPathComponent("upstream")
        try FileManager.default.createDirectory(at: certs, withIntermediateDirectories: true)
        try TestCertificates.makeUpstream(in: certs, names: Self.certificateNames)
        try secret.write(toFile: work("secret"), atomically: true, encoding: .utf8)
        chown(work("secret"), Self.proxyUser, Self.proxyUser)
        chmod(work("secret"), 0o400)
        try AttackScripts.upstream.write(toFile: work("upstream.py"), atomically: true, encoding: .utf8)
        try AttackScripts.client.write(toFile: work("client.py"), atomically: true, encoding: .utf8)

        let python = try tool("python3")
        let cert = work("upstream/upstream.pem"), key = work("upstream/upstream.key")
        var outside: [String] = []
        for a in [Address.good, Address.good6, Address.evil, Address.evil6, Address.metadata] {
            outside += ["tls:\(a):443", "plain:\(a):80"]
        }
        for a in [Address.good, Address.good6, Address.evil, Address.evil6] { outside += ["tcp:\(a):22", "udp:\(a):443"] }
        try startDaemon(in: lab.outside, [python, work("upstream.py"), work("upstream.jsonl"), cert, key, work("secret")] + outside,
                        log: "upstream.log")
        try startDaemon(in: lab.sandbox, [python, work("upstream.py"), work("victim.jsonl"), cert, key, work("secret"),
                                          "tls:127.0.0.1:443", "plain:127.0.0.1:80", "tls:::1:443", "plain:::1:80"],
                        log: "victim.log")
        // ICMP echo sockets for unprivileged users (SOCK_DGRAM, IPPROTO_ICMP), as Docker
        // allows by default: the sandbox user can ping, so the firewall must stop it.
        try lab.exec(in: lab.sandbox, ["/bin/sh", "-c", "echo 0 2147483647 > /proc/sys/net/ipv4/ping_group_range"])

        _ = try lab.write("policy.toml", policy())
        let r = try lab.fwctl(["up", work("policy.toml"), "--log", work("proxy.log"), "--watch-log", work("watch.log")], from: .netnsName)
        guard r.status == 0, r.stdout.contains("proxy ready"), r.stdout.contains("DNS filter on") else {
            throw LabError("fwctl up (exit \(r.status)): \(r.stdout)\(r.stderr)\n\(tail(work("proxy.log")))\n\(tail(work("watch.log")))")
        }
    }

    override func tearDown() {
        daemons.forEach { $0.stop() }
        daemons = []
        if lab != nil {
            let run = "/run/fwctl"
            for name in (try? FileManager.default.contentsOfDirectory(atPath: run)) ?? [] where name.contains("-netns\(netnsInode)-") {
                try? FileManager.default.removeItem(atPath: "\(run)/\(name)")
            }
        }
        lab?.destroy()
        lab = nil
        super.tearDown()
    }

    func policy() -> String {
        """
        version = 1

        [firewall]
        table = "fwctl"
        egress = "reject"

        [dns]
        servers = ["\(DynamicDNS.address)"]
        timeout_ms = 1000
        filter = true
        filter_port = 5353

        [proxy]
        listen = "127.0.0.1:3128"
        user = \(Self.proxyUser)
        transparent = true
        transparent_port = 3130
        ca_dir = "\(work("ca"))"
        ca_cert = "\(work("fwctl-ca.pem"))"
        upstream_ca = "\(work("upstream/ca.pem"))"
        access_log = "\(work("log/access.jsonl"))"

        [[allow]]
        host = "anthropic.lab.test"
        via = "proxy"
        ports = [443]
        methods = ["GET", "POST"]
        [[allow.inject]]
        header = "x-api-key"
        placeholder = "\(placeholder)"
        secret = "file:\(work("secret"))"

        [[allow]]
        host = "splice.lab.test"
        via = "proxy"
        ports = [443]

        [[allow]]
        host = "plain.lab.test"
        via = "proxy"
        ports = [80, 443]
        methods = ["GET"]

        [[allow]]
        host = "*.example.test"
        via = "proxy"
        ports = [443]

        [[allow]]
        host = "api.example.test"
        via = "proxy"
        ports = [443]
        methods = ["GET"]
        paths = ["/v1/*"]

        [[allow]]
        host = "loop.lab.test"
        via = "proxy"
        ports = [80, 443, 3128, 3130]

        [[allow]]
        host = "loop6.lab.test"
        via = "proxy"
        ports = [80, 443, 3128]

        [[allow]]
        host = "meta.lab.test"
        via = "proxy"
        ports = [80, 443]

        [[allow]]
        host = "mapped.lab.test"
        via = "proxy"
        ports = [443]

        [[allow]]
        host = "zero.lab.test"
        via = "proxy"
        ports = [443]
        """
    }

    // MARK: - Set-up helpers

    static let countersTable = """
        table inet attackwatch {
            chain pre {
                type filter hook prerouting priority -300; policy accept;
                iifname "lo" accept
                ip daddr \(Address.evil) counter comment "evil4"
                ip6 daddr \(Address.evil6) counter comment "evil6"
                ip daddr \(Lab.Address.blocked) counter comment "blocked4"
                ip daddr \(Address.metadata) counter comment "metadata"
                ip daddr \(Address.good) meta l4proto != tcp counter comment "good4-not-tcp"
                ip6 daddr \(Address.good6) meta l4proto != tcp counter comment "good6-not-tcp"
                ip daddr \(Address.good) tcp dport != { 80, 443 } counter comment "good4-other-ports"
                ip6 daddr \(Address.good6) tcp dport != { 80, 443 } counter comment "good6-other-ports"
                ip daddr != \(DynamicDNS.address) meta l4proto { tcp, udp } th dport 53 counter comment "dns-elsewhere4"
                ip6 nexthdr { tcp, udp } th dport 53 counter comment "dns-elsewhere6"
            }
        }
        """

    private func ip(_ ns: NetworkNamespace, _ batch: String) throws {
        let r = try FWTestSupport.run(try tool("ip"), ["-n", ns.name, "-batch", "-"], input: batch + "\n")
        guard r.status == 0 else { throw LabError("ip -n \(ns.name) -batch: \(r.stderr)") }
    }

    private func startDaemon(in ns: NetworkNamespace, _ argv: [String], log: String) throws {
        let d = try Daemon([try tool("ip"), "netns", "exec", ns.name] + argv, log: work(log))
        daemons.append(d)
        for _ in 0..<200 where !d.output.contains("ready") {
            guard d.isRunning else { throw LabError("\(argv[1]) exited: \(d.output)") }
            usleep(25_000)
        }
        guard d.output.contains("ready") else { throw LabError("\(argv[1]) did not start: \(d.output)") }
    }

    // MARK: - The attacker

    /// Runs `argv` in the sandbox as the sandbox user.
    @discardableResult
    func asSandboxUser(_ argv: [String], seconds: Int = 30) throws -> ProcessResult {
        try lab.exec(in: lab.sandbox, [try tool("setpriv"), "--reuid=\(Self.sandboxUser)", "--regid=\(Self.sandboxUser)",
                                       "--clear-groups"] + argv, seconds: seconds)
    }

    func python(_ script: String) throws -> ProcessResult {
        try asSandboxUser([try tool("python3"), "-c", script])
    }

    /// curl in the sandbox as the sandbox user; returns (exit, http code, headers and body
    /// with the secret masked).
    func curl(_ args: [String]) throws -> (exit: Int32, code: String, text: String, raw: String) {
        let r = try asSandboxUser([try tool("curl"), "-sS", "-i", "--max-time", "5", "-w", "\n%{http_code}"] + args)
        let code = r.stdout.split(separator: "\n").last.map(String.init) ?? ""
        return (r.status, code, mask(r.stdout + r.stderr), r.stdout + r.stderr)
    }

    var viaProxy: [String] { ["--proxy", "http://127.0.0.1:3128"] }
    var fwctlCA: [String] { ["--cacert", work("fwctl-ca.pem")] }
    var upstreamCA: [String] { ["--cacert", work("upstream/ca.pem")] }

    /// One try of the attacker's raw client (`AttackScripts.client`).
    struct Attempt: Encodable {
        var name: String
        /// The explicit proxy; nil: `dial` straight (the transparent redirect takes it).
        var proxy: String? = "127.0.0.1:3128"
        var dial: String?
        /// CONNECT target (HOST:PORT exactly as sent).
        var connect: String?
        var tls = false
        /// nil: no SNI at all.
        var sni: String?
        /// Raw bytes to send (after CONNECT and TLS), each piece written 50 ms after the last.
        var send: [String] = []
        /// Seconds for the whole exchange, and of silence after the first byte, before
        /// reading stops (default 3 and 0.6).
        var timeout: Double?
        var idle: Double?
    }

    struct Outcome: Decodable, CustomStringConvertible {
        var name: String
        var connect: String?
        var tls: String?
        var response: String?
        var end: String?
        var error: String?

        /// The statuses of every HTTP response read back (the CONNECT answer when it was a refusal).
        var statuses: [Int] {
            (connectStatus.map { $0 == 200 ? [] : [$0] } ?? []) + tunnelStatuses
        }

        /// The statuses after a successful CONNECT (the tunnel's own responses).
        var tunnelStatuses: [Int] {
            (response ?? "").matches(of: #/(?m)^HTTP/1\.[01] (\d{3})/#).compactMap { Int($0.output.1) }
        }

        var connectStatus: Int? {
            connect.flatMap { $0.firstMatch(of: #/^HTTP/1\.[01] (\d{3})/#) }.flatMap { Int($0.output.1) }
        }

        /// Whether anything got through: a 2xx to a request (not to CONNECT itself).
        var gotThrough: Bool { tunnelStatuses.contains { (200..<300).contains($0) } }

        var description: String {
            "\(name): connect=\(connect?.split(separator: "\r\n").first.map(String.init) ?? "-") tls=\(tls ?? "-") "
                + "end=\(end ?? "-") error=\(error ?? "-") response=\((response ?? "").prefix(600).debugDescription)"
        }
    }

    /// Runs the attempts in one process of the sandbox user; returns their outcomes by name.
    func attempt(_ attempts: [Attempt], file: StaticString = #filePath, line: UInt = #line) throws -> [String: Outcome] {
        let json = String(decoding: try JSONEncoder().encode(attempts), as: UTF8.self)
        let r = try asSandboxUser([try tool("python3"), work("client.py"), json, work("fwctl-ca.pem"), work("upstream/ca.pem")],
                                  seconds: 20 + 4 * attempts.count)
        guard r.status == 0, let list = try? JSONDecoder().decode([Outcome].self, from: Data(r.stdout.utf8)) else {
            throw LabError("client.py failed (exit \(r.status)): \(mask(r.stdout))\(r.stderr)")
        }
        var out: [String: Outcome] = [:]
        for o in list { out[o.name] = o }
        XCTAssertEqual(out.count, attempts.count, "duplicate attempt names", file: file, line: line)
        return out
    }

    /// An HTTP/1.1 request as raw text.
    func request(_ target: String, method: String = "GET", host: String?, headers: [String] = [], body: String = "",
                 close: Bool = true) -> String {
        var lines = ["\(method) \(target) HTTP/1.1"]
        if let host { lines.append("Host: \(host)") }
        lines += headers
        if !body.isEmpty { lines.append("Content-Length: \(body.utf8.count)") }
        if close { lines.append("Connection: close") }
        return lines.joined(separator: "\r\n") + "\r\n\r\n" + body
    }

    func mask(_ text: String) -> String { text.replacingOccurrences(of: secret, with: "<SECRET>") }

    // MARK: - What reached the upstream

    /// Positions in the upstream's and the victim's records.
    struct Mark { var upstream: Int; var victim: Int }

    func mark() -> Mark {
        settle()
        return Mark(upstream: jsonLines(work("upstream.jsonl")).count, victim: jsonLines(work("victim.jsonl")).count)
    }

    /// Lets events that are under way land in the records (the upstream logs from threads).
    func settle() { usleep(250_000) }

    /// Every event since `m`, the victim's marked with "victim".
    func events(since m: Mark) -> [[String: Any]] {
        settle()
        let up = Array(jsonLines(work("upstream.jsonl")).dropFirst(m.upstream))
        let victim = jsonLines(work("victim.jsonl")).dropFirst(m.victim).map { e -> [String: Any] in
            var e = e
            e["victim"] = true
            return e
        }
        return up + victim
    }

    func requests(since m: Mark) -> [[String: Any]] { events(since: m).filter { $0["event"] as? String == "request" } }

    /// What may have reached the upstream during an attempt.
    enum Reach {
        /// Nothing at all: not even a TCP connection.
        case nothing
        /// A TCP connection (a spliced tunnel is dialed before the ClientHello is checked),
        /// but not one byte.
        case noBytes
        /// The proxy's own connection for a terminated tunnel to `identity` (dialed, TLS
        /// with that SNI, before the CONNECT is answered); no request, no ClientHello
        /// naming another host.
        case noRequest(identity: String)
    }

    /// Fails when more than `reach` allows arrived at the upstream or the victim since `m`.
    func assertNothingReached(since m: Mark, _ reach: Reach, _ what: String, file: StaticString = #filePath, line: UInt = #line) {
        let all = events(since: m)
        let bad = all.filter { e in
            let kind = e["event"] as? String ?? "?"
            switch reach {
            case .nothing:
                return true
            case .noBytes:
                return !["connect", "closed", "error"].contains(kind)
            case .noRequest(let identity):
                if kind == "sni" { return (e["name"] as? String)?.lowercased() != identity }
                if e["victim"] != nil { return true }
                return !["connect", "closed", "bytes", "handshake", "error"].contains(kind)
            }
        }
        XCTAssertTrue(bad.isEmpty, "\(what): reached the upstream:\n\(describe(bad))", file: file, line: line)
    }

    func describe(_ events: [[String: Any]]) -> String {
        mask(events.map { e in
            var e = e
            e["time"] = nil
            e["headers"] = nil
            let data = (try? JSONSerialization.data(withJSONObject: e, options: [.sortedKeys])) ?? Data()
            return String(decoding: data, as: UTF8.self)
        }.joined(separator: "\n"))
    }

    /// The value of header `name` (case-insensitive) in a recorded request.
    static func header(_ request: [String: Any], _ name: String) -> [String] {
        let pairs = request["headers"] as? [[String]] ?? []
        return pairs.filter { $0.count == 2 && $0[0].lowercased() == name.lowercased() }.map { $0[1] }
    }

    // MARK: - Packets at the outside

    /// The outside's prerouting counters (packets from the sandbox), by comment.
    func counters() throws -> [String: Int] {
        let r = try lab.nft(["list", "table", "inet", "attackwatch"], in: lab.outside)
        var out: [String: Int] = [:]
        for m in r.stdout.matches(of: #/counter packets (\d+) bytes \d+ comment "([^"]+)"/#) {
            out[String(m.output.2)] = Int(m.output.1)
        }
        return out
    }

    func assertCountersUnchanged(since before: [String: Int], _ names: [String], _ what: String,
                                 file: StaticString = #filePath, line: UInt = #line) throws {
        let after = try counters()
        for n in names {
            XCTAssertNotNil(after[n], "no counter \(n)", file: file, line: line)
            XCTAssertEqual(after[n], before[n], "\(what): packets for \(n) reached the outside", file: file, line: line)
        }
    }

    func accessLog() -> String { mask(tail(work("log/access.jsonl"), lines: 40)) }
}
