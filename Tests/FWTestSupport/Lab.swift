import Foundation
import XCTest
#if canImport(Glibc)
import Glibc
#endif

/// An end-to-end network lab for the kernel tests, built from network namespaces:
///
/// - *sandbox*: where the firewall goes and the probes run; 192.0.2.2/24 and 2001:db8::2/64,
///   default routes via the outside; its resolv.conf names the lab's DNS server.
/// - *outside*: the world, at the other end of a veth pair: a real dnsmasq on 192.0.2.1 and a
///   second ("rogue") one on 198.51.100.10, TCP listeners on `Port.tcp` and UDP echo on
///   `Port.udp` at every address in `Address`.
/// - *controller*: an empty namespace standing in for the host, where `fwctl --netns SANDBOX`
///   runs. A --netns that did not switch would change this namespace (the tests check it
///   stays empty), never this machine's own.
///
/// Documentation addresses and `.test` names only; nothing leaves the lab. `destroy()` (deinit
/// calls it too) ends every process and removes the namespaces, /etc/netns/SANDBOX and the
/// work directory; a lab left behind by a test process that was killed is removed by the next.
public final class Lab {
    /// The lab's addresses, all from documentation ranges.
    public enum Address {
        /// The outside end of the veth: the lab's DNS server, and the sandbox's one peer on
        /// its own subnet (what `host_network` is about).
        public static let resolver = "192.0.2.1"
        public static let resolver6 = "2001:db8::1"
        /// api.lab.test: A and AAAA.
        public static let api = "203.0.113.10"
        public static let api6 = "2001:db8:10::10"
        /// ssh.lab.test
        public static let ssh = "203.0.113.20"
        /// cdn.lab.test, the target of the CNAME www.lab.test.
        public static let cdn = "203.0.113.30"
        /// blocked.lab.test, which also runs the rogue DNS server no policy allows.
        public static let blocked = "198.51.100.10"
        /// anthropic.lab.test: no listeners of the lab's own; a test runs its HTTPS upstream here.
        public static let upstream = "203.0.113.40"
        public static let upstream6 = "2001:db8:40::40"
        public static let rogueResolver = blocked

        static let outsideHosts = [api, api6, ssh, cdn, blocked]
    }

    public enum Port {
        /// TCP listeners on every outside address, IPv4 and IPv6.
        public static let tcp = [22, 80, 443, 8080, 8443]
        /// UDP echo (QUIC's port) on every outside address.
        public static let udp = [443]
        /// Probed on the resolver's address to see whether the host network is open.
        public static let hostNetwork = 8080
    }

    /// What both DNS servers answer. Other names under .test get NXDOMAIN.
    static let dnsRecords = [
        "--host-record=api.lab.test,\(Address.api),\(Address.api6),300",
        "--host-record=ssh.lab.test,\(Address.ssh),300",
        "--host-record=cdn.lab.test,\(Address.cdn),300",
        "--host-record=blocked.lab.test,\(Address.blocked),300",
        "--host-record=anthropic.lab.test,\(Address.upstream),\(Address.upstream6),300",
        "--cname=www.lab.test,cdn.lab.test,300",
    ]

    public let sandbox: NetworkNamespace
    public let outside: NetworkNamespace
    public let controller: NetworkNamespace
    /// Scratch space for policies and logs; removed with the lab.
    public let workDir: URL

    private let tools: Tools
    private var processes: [Daemon] = []
    private var destroyed = false

    /// Builds the lab and returns once both DNS servers answer and the listeners are up.
    /// Skips (XCTSkip) without root or without a tool the lab needs.
    public init() throws {
        guard getuid() == 0 else { throw XCTSkip("the lab needs root (network namespaces)") }
        tools = try Tools()
        Lab.removeStaleLabs(ip: tools.ip)
        sandbox = try NetworkNamespace(prefix: "fwlab-sb")
        outside = try NetworkNamespace(prefix: "fwlab-out")
        controller = try NetworkNamespace(prefix: "fwlab-ctl")
        let tag = String(format: "%08x", UInt32.random(in: 0..<UInt32.max))
        workDir = URL(fileURLWithPath: "/tmp/fwlab-\(getpid())-\(tag)")
        do {
            try FileManager.default.createDirectory(at: workDir, withIntermediateDirectories: true)
            try build(tag: tag)
        } catch {
            destroy()
            throw error
        }
    }

    deinit { destroy() }

    /// Ends the lab's processes and removes everything it made. Safe to call twice.
    public func destroy() {
        guard !destroyed else { return }
        destroyed = true
        processes.forEach { $0.stop() }
        processes = []
        for ns in [sandbox, outside, controller] { Lab.remove(ns.name, ip: tools.ip) }
        try? FileManager.default.removeItem(at: workDir)
    }

    // MARK: - Commands

    /// Where `fwctl` runs for a kernel command.
    public enum Vantage: CaseIterable {
        /// `ip netns exec SANDBOX fwctl ...`, the way a devcontainer hook runs it.
        case inside
        /// `fwctl ... --netns SANDBOX`, from the controller namespace.
        case netnsName
        /// `fwctl ... --netns /run/netns/SANDBOX`, from the controller namespace.
        case netnsPath
    }

    /// Runs the fwctl under test, within 60 s.
    @discardableResult
    public func fwctl(_ args: [String], from vantage: Vantage) throws -> ProcessResult {
        let netns: String
        switch vantage {
        case .inside: return try exec(in: sandbox, [Paths.fwctl] + args, seconds: 60)
        case .netnsName: netns = sandbox.name
        case .netnsPath: netns = "/run/netns/\(sandbox.name)"
        }
        return try exec(in: controller, [Paths.fwctl] + args + ["--netns", netns], seconds: 60)
    }

    /// Runs nft in a lab namespace (default: the sandbox).
    @discardableResult
    public func nft(_ args: [String], input: String? = nil, in ns: NetworkNamespace? = nil) throws -> ProcessResult {
        try exec(in: ns ?? sandbox, [tools.nft] + args, input: input)
    }

    /// `nft list ruleset` of a lab namespace (default: the sandbox), exactly as printed.
    public func nftList(in ns: NetworkNamespace? = nil) throws -> String {
        let r = try nft(["list", "ruleset"], in: ns)
        guard r.status == 0 else { throw LabError("nft list ruleset failed: \(r.stderr)") }
        return r.stdout
    }

    /// Writes a file (a policy) into the lab's work directory and returns its path.
    public func write(_ name: String, _ text: String) throws -> String {
        let url = workDir.appendingPathComponent(name)
        try text.write(to: url, atomically: true, encoding: .utf8)
        return url.path
    }

    /// Creates `table FAMILY NAME { flags owner; }` in the sandbox from an `nft -i` that
    /// keeps running: the table belongs to that process's netlink socket, and the kernel
    /// refuses (EPERM) any change to it by anyone else until the lab ends.
    public func holdOwnedTable(family: String, name: String) throws {
        let holder = try Daemon([tools.ip, "netns", "exec", sandbox.name, tools.nft, "-i"],
                                    log: workDir.appendingPathComponent("owner-\(name).log").path,
                                    keepStdinOpen: true)
        processes.append(holder)
        holder.send("add table \(family) \(name) { flags owner; }\n")
        try waitUntil("the owned table \(family) \(name)", processes: [holder]) {
            try nft(["list", "table", family, name]).stdout.contains("flags owner")
        }
    }

    // MARK: - DNS whose records change

    /// A second dnsmasq in the outside namespace, on `DynamicDNS.address`, answering from
    /// a hosts file the test rewrites (then `reload()`, dnsmasq's SIGHUP) with a short TTL,
    /// and CNAMEs that `restart(cnames:)` changes. It logs every query it receives.
    /// Also makes every address of `DynamicDNS.pool4`/`pool6` answer TCP on
    /// `DynamicDNS.port` (the addresses the test's names rotate through).
    public func startDynamicDNS(hosts: String, ttl: Int, cnames: [String] = []) throws -> DynamicDNS {
        try ipBatch(outside, """
            addr add \(DynamicDNS.address)/32 dev lo
            route add local \(DynamicDNS.pool4) dev lo
            route add local \(DynamicDNS.pool6) dev lo
            """)
        let listener = try spawn(in: outside, log: "pool-listener.log", [
            tools.python3, Lab.script, "serve", "--tcp", String(DynamicDNS.port), "--udp", "", "--udp-address", "::",
        ])
        try waitUntil("the pool's listener", processes: [listener]) { listener.output.contains("ready\n") }
        let dns = DynamicDNS(lab: self, hostsFile: workDir.appendingPathComponent("dynamic.hosts").path, ttl: ttl)
        try dns.write(hosts)
        try dns.restart(cnames: cnames)
        return dns
    }

    /// Starts (again) the dynamic DNS server's dnsmasq; returns once it answers.
    func spawnDynamicDNS(_ dns: DynamicDNS, cnames: [String]) throws -> Daemon {
        let d = try spawn(in: outside, log: "dnsmasq-dynamic.log", [
            tools.dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
            "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=\(DynamicDNS.address)",
            "--port=53", "--local=/test/", "--log-facility=-", "--log-queries",
            "--addn-hosts=\(dns.hostsFile)", "--local-ttl=\(dns.ttl)",
        ] + cnames.map { "--cname=\($0),\(dns.ttl)" })
        try waitUntil("the dynamic dnsmasq", processes: [d]) {
            try dig("ready.lab.test", "A", server: DynamicDNS.address, tcp: false, in: outside).output.contains("status:")
                || d.output.contains("query[A] ready.lab.test")
        }
        return d
    }

    // MARK: - Probes from the sandbox

    public enum Family: Int { case v4 = 4, v6 = 6 }

    /// Connects to `host` (a name, looked up through the lab's DNS, or an address) with a
    /// time limit; as `user` (a uid, through setpriv) when given, else as root.
    public func tcp(_ host: String, _ port: Int, family: Family? = nil, timeout: Double = 2, user: UInt32? = nil) throws -> Probe<TCPOutcome> {
        try probe("tcp", host, port, family: family, timeout: timeout, user: user)
    }

    /// Sends one datagram to `host` and waits for the echo.
    public func udp(_ host: String, _ port: Int, family: Family? = nil, timeout: Double = 1) throws -> Probe<UDPOutcome> {
        try probe("udp", host, port, family: family, timeout: timeout)
    }

    /// One DNS query from the sandbox with dig: one try, at most 1 s.
    public func dig(_ name: String, _ type: String = "A", server: String, tcp: Bool = false) throws -> DNSAnswer {
        try dig(name, type, server: server, tcp: tcp, in: sandbox)
    }

    private func dig(_ name: String, _ type: String, server: String, tcp: Bool, in ns: NetworkNamespace) throws -> DNSAnswer {
        let r = try exec(in: ns, [tools.dig, "@\(server)", name, type, "+short", "+time=1", "+tries=1"]
                         + (tcp ? ["+tcp"] : []))
        let lines = r.stdout.split(separator: "\n").map(String.init).filter { !$0.hasPrefix(";") }
        return DNSAnswer(records: r.status == 0 ? lines : [], output: r.stdout + r.stderr)
    }

    private func probe<Outcome: Decodable & Equatable>(_ kind: String, _ host: String, _ port: Int, family: Family?, timeout: Double,
                                                       user: UInt32? = nil) throws -> Probe<Outcome> {
        var argv = [tools.python3, Lab.script, kind, host, String(port), "--timeout", String(timeout)]
        if let user { argv = [try tool("setpriv"), "--reuid=\(user)", "--regid=\(user)", "--clear-groups"] + argv }
        if let family { argv += ["--family", String(family.rawValue)] }
        let r = try exec(in: sandbox, argv, seconds: Int(timeout) + 10)
        guard r.status == 0, let p = try? JSONDecoder().decode(Probe<Outcome>.self, from: Data(r.stdout.utf8)) else {
            throw LabError("probe \(kind) \(host) \(port) failed (exit \(r.status)): \(r.stdout)\(r.stderr)")
        }
        return p
    }

    // MARK: - Building

    static let script = Paths.packageRoot.appendingPathComponent("Tests/FWLabTests/Fixtures/labnet.py").path

    private func build(tag: String) throws {
        // veth names have at most 15 characters.
        let (sb, out) = ("fwl\(tag)s", "fwl\(tag)o")
        try ipBatch(sandbox, """
            link add \(sb) type veth peer name \(out) netns \(outside.name)
            addr add 192.0.2.2/24 dev \(sb)
            addr add 2001:db8::2/64 dev \(sb) nodad
            link set \(sb) up
            route add default via \(Address.resolver)
            route add default via \(Address.resolver6)
            """)
        try ipBatch(outside, """
            addr add \(Address.resolver)/24 dev \(out)
            addr add \(Address.resolver6)/64 dev \(out) nodad
            link set \(out) up
            """ + (Address.outsideHosts + [Address.upstream, Address.upstream6])
                .map { "\naddr add \($0)/\($0.contains(":") ? 128 : 32) dev lo" }.joined())

        // `ip netns exec` bind-mounts this over /etc/resolv.conf: names resolve through the
        // lab's server, never this machine's, and a blocked server fails within a second.
        let etc = URL(fileURLWithPath: "/etc/netns/\(sandbox.name)")
        try FileManager.default.createDirectory(at: etc, withIntermediateDirectories: true)
        try "nameserver \(Address.resolver)\noptions timeout:1 attempts:1\n"
            .write(to: etc.appendingPathComponent("resolv.conf"), atomically: true, encoding: .utf8)

        var started: [Daemon] = []
        for address in [Address.resolver, Address.rogueResolver] {
            started.append(try spawn(in: outside, log: "dnsmasq-\(address).log", [
                tools.dnsmasq, "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--no-resolv", "--no-hosts", "--bind-interfaces", "--listen-address=\(address)",
                "--port=53", "--local=/test/", "--log-facility=-",
            ] + Lab.dnsRecords))
        }
        let listeners = try spawn(in: outside, log: "listeners.log", [
            tools.python3, Lab.script, "serve",
            "--tcp", Port.tcp.map(String.init).joined(separator: ","),
            "--udp", Port.udp.map(String.init).joined(separator: ","),
        ] + ([Address.resolver, Address.resolver6] + Address.outsideHosts).flatMap { ["--udp-address", $0] })
        started.append(listeners)

        try waitUntil("the lab's listeners", processes: started) {
            listeners.output.contains("ready\n")
        }
        for server in [Address.resolver, Address.rogueResolver] {
            try waitUntil("dnsmasq on \(server)", processes: started) {
                try dig("api.lab.test", "A", server: server, tcp: false, in: outside).records == [Address.api]
            }
        }
    }

    private func ipBatch(_ ns: NetworkNamespace, _ commands: String) throws {
        let r = try bounded([tools.ip, "-n", ns.name, "-batch", "-"], input: commands + "\n")
        guard r.status == 0 else { throw LabError("ip -n \(ns.name) -batch: \(r.stderr)") }
    }

    private func spawn(in ns: NetworkNamespace, log: String, _ argv: [String]) throws -> Daemon {
        let p = try Daemon([tools.ip, "netns", "exec", ns.name] + argv,
                               log: workDir.appendingPathComponent(log).path)
        processes.append(p)
        return p
    }

    /// Polls `condition` every 50 ms for up to 10 s; fails early, with their logs, when one
    /// of `processes` has exited.
    private func waitUntil(_ what: String, processes: [Daemon], _ condition: () throws -> Bool) throws {
        let deadline = Date().addingTimeInterval(10)
        while Date() < deadline {
            if try condition() { return }
            if let dead = processes.first(where: { !$0.isRunning }) {
                throw LabError("\(what): \(dead.argv.joined(separator: " ")) exited: \(dead.output)")
            }
            usleep(50_000)
        }
        throw LabError("\(what): not ready after 10 s; logs: \(processes.map(\.output).joined(separator: "\n"))")
    }

    // MARK: - Running commands

    @discardableResult
    public func exec(in ns: NetworkNamespace, _ argv: [String], input: String? = nil, seconds: Int = 30) throws -> ProcessResult {
        try bounded([tools.ip, "netns", "exec", ns.name] + argv, input: input, seconds: seconds)
    }

    /// Every command has a time limit (coreutils timeout: TERM, KILL 2 s later), so a hung
    /// child fails its test instead of stalling the whole run.
    private func bounded(_ argv: [String], input: String? = nil, seconds: Int = 30) throws -> ProcessResult {
        try run(tools.timeout, ["-k", "2", String(seconds)] + argv, input: input)
    }

    // MARK: - Removal

    /// Kills what still runs in the namespace (e.g. dnsmasq's TCP children), deletes the
    /// namespace and its /etc/netns directory.
    private static func remove(_ name: String, ip: String) {
        let pids = (try? run(ip, ["netns", "pids", name]).stdout) ?? ""
        for pid in pids.split(separator: "\n").compactMap({ pid_t($0) }) { kill(pid, SIGKILL) }
        _ = try? run(ip, ["netns", "del", name])
        try? FileManager.default.removeItem(atPath: "/etc/netns/\(name)")
    }

    private static let staleLabsLock = NSLock()
    private nonisolated(unsafe) static var staleLabsRemoved = false

    /// A test process killed mid-run (no deinit) leaves its labs behind: namespaces named
    /// fwlab-KIND-PID-RANDOM and /tmp/fwlab-PID-TAG whose PID no longer runs. Once per process.
    private static func removeStaleLabs(ip: String) {
        staleLabsLock.lock()
        defer { staleLabsLock.unlock() }
        guard !staleLabsRemoved else { return }
        staleLabsRemoved = true
        func isStale(_ name: String, pidField: Int) -> Bool {
            let parts = name.split(separator: "-")
            guard parts.count > pidField, parts[0] == "fwlab", let pid = pid_t(parts[pidField]) else { return false }
            return kill(pid, 0) != 0 && errno == ESRCH
        }
        let names = ((try? run(ip, ["netns", "list"]).stdout) ?? "")
            .split(separator: "\n").compactMap { $0.split(separator: " ").first.map(String.init) }
        for name in names where isStale(name, pidField: 2) { remove(name, ip: ip) }
        let tmp = (try? FileManager.default.contentsOfDirectory(atPath: "/tmp")) ?? []
        for name in tmp where isStale(name, pidField: 1) { try? FileManager.default.removeItem(atPath: "/tmp/\(name)") }
    }
}

// MARK: - Results

public enum TCPOutcome: String, Decodable, Equatable {
    case connected
    /// A TCP reset or an ICMP error: the firewall's `reject`.
    case refused
    /// No answer within the time limit: the firewall's `drop`.
    case timeout
}

public enum UDPOutcome: String, Decodable, Equatable {
    case answered
    case noAnswer = "no-answer"
    case refused
}

/// One probe's outcome and how long the attempt took (seconds; Python's start-up and the
/// name lookup not included).
public struct Probe<Outcome: Decodable & Equatable>: Decodable, CustomStringConvertible {
    public let outcome: Outcome
    public let elapsed: Double
    public let detail: String
    public var description: String { "\(outcome) after \(String(format: "%.1f", elapsed * 1000)) ms (\(detail))" }
}

public struct DNSAnswer: CustomStringConvertible {
    /// The answer's records as `dig +short` prints them; empty when no answer came.
    public let records: [String]
    public let output: String
    public var description: String { records.isEmpty ? "no answer: \(output)" : records.joined(separator: " ") }
}

public struct LabError: Error, CustomStringConvertible {
    public let description: String
    public init(_ description: String) { self.description = description }
}

/// The programs the lab runs; a missing one skips the test with a clear reason.
private struct Tools {
    let ip, nft, dig, python3, timeout, dnsmasq: String
    init() throws {
        ip = try tool("ip"); nft = try tool("nft"); dig = try tool("dig")
        python3 = try tool("python3"); timeout = try tool("timeout"); dnsmasq = try tool("dnsmasq")
    }
}

