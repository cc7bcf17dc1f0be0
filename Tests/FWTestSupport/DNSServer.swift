import Foundation
import FWPolicy
#if canImport(Glibc)
import Glibc
#endif

/// A real dnsmasq answering for one test domain on 127.0.0.1 at a free high port, with
/// the records a test gives it. It forwards nothing (--no-resolv, --local), so no test
/// depends on the machine's resolver. `stop()` ends it; deinit does too.
public final class DNSServer {
    /// --host-record: A and/or AAAA for one name.
    public struct Host {
        public var name: String
        public var ipv4: String?
        public var ipv6: String?
        public var ttl: UInt32?
        public init(_ name: String, ipv4: String? = nil, ipv6: String? = nil, ttl: UInt32? = nil) {
            self.name = name; self.ipv4 = ipv4; self.ipv6 = ipv6; self.ttl = ttl
        }
    }

    /// --cname: alias -> target; the target must be known to this dnsmasq.
    public struct Alias {
        public var alias: String
        public var target: String
        public var ttl: UInt32?
        public init(_ alias: String, to target: String, ttl: UInt32? = nil) {
            self.alias = alias; self.target = target; self.ttl = ttl
        }
    }

    /// One line of an addn-hosts file, the fast way to serve many names (TTL: localTTL).
    public struct HostsEntry {
        public var address: String
        public var name: String
        public init(_ address: String, _ name: String) { self.address = address; self.name = name }
    }

    public enum Failure: Error, CustomStringConvertible {
        case notInstalled
        case didNotStart(String)
        public var description: String {
            switch self {
            case .notInstalled: return DNSServer.missingMessage
            case .didNotStart(let log): return "dnsmasq did not start: \(log)"
            }
        }
    }

    public static let binary = "/usr/sbin/dnsmasq"
    public static let missingMessage = "\(binary) is missing (apt-get install dnsmasq-base)"
    public static var isAvailable: Bool { FileManager.default.isExecutableFile(atPath: binary) }

    public let address = "127.0.0.1"
    public private(set) var port: UInt16 = 0
    public var endpoint: SocketEndpoint { SocketEndpoint(address: IPAddress(address)!, port: port) }

    private let directory: URL
    private var process: Daemon?
    private let lock = NSLock()

    /// Starts dnsmasq and returns once it answers. `domain` is the one it is
    /// authoritative for: other names get REFUSED. `extraArguments` are further dnsmasq
    /// options, e.g. "--txt-record=NAME,TEXT".
    public init(hosts: [Host] = [], aliases: [Alias] = [], hostsEntries: [HostsEntry] = [],
                hostsFiles: [String] = [], localTTL: UInt32 = 0, domain: String = "test",
                extraArguments: [String] = []) throws {
        guard Self.isAvailable else { throw Failure.notInstalled }
        directory = FileManager.default.temporaryDirectory
            .appendingPathComponent("fwctl-dnsmasq-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        do {
            var records = Self.recordArguments(hosts: hosts, aliases: aliases)
                + hostsFiles.map { "--addn-hosts=\($0)" } + extraArguments
            if !hostsEntries.isEmpty {
                let file = directory.appendingPathComponent("hosts")
                try hostsEntries.map { "\($0.address) \($0.name)\n" }.joined()
                    .write(to: file, atomically: true, encoding: .utf8)
                records.append("--addn-hosts=\(file.path)")
            }
            try start(records: records + ["--local-ttl=\(localTTL)"], domain: domain)
        } catch {
            try? FileManager.default.removeItem(at: directory)
            throw error
        }
    }

    deinit { stop() }

    /// Ends dnsmasq (SIGTERM, then SIGKILL if it lingers) and removes its files. Safe to
    /// call twice.
    public func stop() {
        lock.lock()
        let running = process
        process = nil
        lock.unlock()
        guard let running else { return }
        running.stop()
        try? FileManager.default.removeItem(at: directory)
    }

    // MARK: - Starting

    private static func recordArguments(hosts: [Host], aliases: [Alias]) -> [String] {
        let hostRecords = hosts.map { h in
            "--host-record=" + ([h.name, h.ipv4, h.ipv6, h.ttl.map(String.init)].compactMap { $0 }).joined(separator: ",")
        }
        let cnames = aliases.map { a in
            "--cname=" + ([a.alias, a.target, a.ttl.map(String.init)].compactMap { $0 }).joined(separator: ",")
        }
        return hostRecords + cnames
    }

    /// A free port can be taken by someone else before dnsmasq binds it, so a start that
    /// fails with "Address already in use" is tried again on another port.
    private func start(records: [String], domain: String) throws {
        let log = directory.appendingPathComponent("dnsmasq.log").path
        var lastLog = ""
        for _ in 0..<5 {
            let candidate = LoopbackPort.unused()
            let child = try Daemon([Self.binary,
                "--keep-in-foreground", "--conf-file=/dev/null", "--pid-file=",
                "--no-resolv", "--no-hosts", "--bind-interfaces",
                "--listen-address=\(address)", "--port=\(candidate)",
                "--local=/\(domain)/", "--log-facility=-",
            ] + records, log: log)
            if Self.answers(address, candidate, probe: "fwctl-probe.\(domain)", while: child) {
                lock.lock()
                process = child
                port = candidate
                lock.unlock()
                return
            }
            child.stop()
            lastLog = (try? String(contentsOfFile: log, encoding: .utf8)) ?? ""
            guard lastLog.contains("Address already in use") else { break }
        }
        throw Failure.didNotStart(lastLog.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    /// Sends an A query for `probe` until any answer comes back, for up to 10 s or
    /// until the process exits.
    private static func answers(_ address: String, _ port: UInt16, probe: String, while child: Daemon) -> Bool {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var wait = timeval(tv_sec: 0, tv_usec: 50_000)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &wait, socklen_t(MemoryLayout<timeval>.size))
        var target = LoopbackPort.sockaddr(address, port)
        let query = probeQuery(probe)
        var buffer = [UInt8](repeating: 0, count: 512)
        let deadline = Date().addingTimeInterval(10)
        while child.isRunning && Date() < deadline {
            _ = withUnsafePointer(to: &target) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    sendto(fd, query, query.count, 0, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if recv(fd, &buffer, buffer.count, 0) >= 12 { return true }
        }
        return false
    }

    /// A minimal DNS query, built by hand so this harness needs no DNS library.
    private static func probeQuery(_ name: String) -> [UInt8] {
        var bytes: [UInt8] = [0x4a, 0x11, 0x01, 0x00, 0, 1, 0, 0, 0, 0, 0, 0]
        for label in name.split(separator: ".") {
            bytes.append(UInt8(label.utf8.count))
            bytes += label.utf8
        }
        return bytes + [0, 0, 1, 0, 1]
    }
}


/// A UDP socket on 127.0.0.1 that never answers: a DNS server that is up but silent.
public final class SilentUDPServer {
    public let port: UInt16
    public var endpoint: SocketEndpoint { SocketEndpoint(address: IPAddress("127.0.0.1")!, port: port) }
    private var fd: Int32

    public init() throws {
        let fd = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        var address = LoopbackPort.sockaddr("127.0.0.1", 0)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard fd >= 0, bound == 0 else {
            if fd >= 0 { close(fd) }
            throw DNSServer.Failure.didNotStart("cannot bind a UDP socket on 127.0.0.1")
        }
        self.fd = fd
        port = LoopbackPort.localPort(of: fd)
    }

    deinit { stop() }

    public func stop() {
        if fd >= 0 { close(fd) }
        fd = -1
    }
}

/// Loopback port helpers for the servers above.
public enum LoopbackPort {
    /// A port on 127.0.0.1 that is free for both UDP and TCP right now. Nothing listens
    /// on it, so it also serves as a server that is down.
    ///
    /// Ports come from below the kernel's ephemeral range, so no client connection (curl,
    /// the proxy's own dials) can be given one between this call and the bind that follows;
    /// XCTest builds every test's instance before the first runs, so a port picked in an
    /// initialiser may wait minutes for its bind. A port is handed out once per process.
    public static func unused() -> UInt16 {
        let range = candidates()
        for _ in 0..<2_000 {
            let port = UInt16.random(in: range)
            guard reserve(port) else { continue }
            if isFree(port) { return port }
        }
        // Every candidate was taken or handed out: fall back to one the kernel picks.
        while true {
            let udp = socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
            defer { close(udp) }
            guard bindLoopback(udp, 0) else { continue }
            let port = localPort(of: udp)
            if reserve(port), isFree(port, udpAlreadyHeld: true) { return port }
        }
    }

    private static let handedOutLock = NSLock()
    nonisolated(unsafe) private static var handedOut = Set<UInt16>()

    private static func reserve(_ port: UInt16) -> Bool {
        handedOutLock.lock()
        defer { handedOutLock.unlock() }
        return handedOut.insert(port).inserted
    }

    /// Below the ephemeral range (/proc/sys/net/ipv4/ip_local_port_range), above 10000.
    static func candidates() -> ClosedRange<UInt16> {
        let text = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? ""
        let low = text.split(whereSeparator: { $0 == " " || $0 == "\t" || $0 == "\n" }).first.flatMap { UInt16($0) } ?? 32768
        return low > 12_000 ? 10_000...(low - 1) : 61_000...65_000
    }

    private static func isFree(_ port: UInt16, udpAlreadyHeld: Bool = false) -> Bool {
        let udp = udpAlreadyHeld ? -1 : socket(AF_INET, Int32(SOCK_DGRAM.rawValue), 0)
        let tcp = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { if udp >= 0 { close(udp) }; close(tcp) }
        if !udpAlreadyHeld && !bindLoopback(udp, port) { return false }
        return bindLoopback(tcp, port)
    }

    /// A TCP socket connected to 127.0.0.1:`port`, or nil when nothing accepts there. The
    /// caller closes it.
    public static func connect(_ port: UInt16) -> Int32? {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var sin = sockaddr("127.0.0.1", port)
        let ok = withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
        }
        if ok { return fd }
        close(fd)
        return nil
    }

    static func sockaddr(_ address: String, _ port: UInt16) -> sockaddr_in {
        var sin = sockaddr_in()
        sin.sin_family = sa_family_t(AF_INET)
        sin.sin_port = port.bigEndian
        inet_pton(AF_INET, address, &sin.sin_addr)
        return sin
    }

    static func localPort(of fd: Int32) -> UInt16 {
        var sin = sockaddr_in()
        var size = socklen_t(MemoryLayout<sockaddr_in>.size)
        _ = withUnsafeMutablePointer(to: &sin) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) { getsockname(fd, $0, &size) }
        }
        return UInt16(bigEndian: sin.sin_port)
    }

    private static func bindLoopback(_ fd: Int32, _ port: UInt16) -> Bool {
        var sin = sockaddr("127.0.0.1", port)
        return withUnsafePointer(to: &sin) {
            $0.withMemoryRebound(to: Glibc.sockaddr.self, capacity: 1) {
                bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0
            }
        }
    }
}
