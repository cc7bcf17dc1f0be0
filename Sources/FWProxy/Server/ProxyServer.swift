import Foundation
import FWPolicy
import FWResolve
import Logging
import NIOCore
import NIOHTTP1
import NIOPosix

/// How many client connections are open, so a shutdown can wait for them.
final class ConnectionCount: @unchecked Sendable {
    private let lock = NSLock()
    private var open = 0

    var value: Int { lock.lock(); defer { lock.unlock() }; return open }

    /// Counts `channel` until it closes.
    func track(_ channel: Channel) {
        lock.lock(); open += 1; lock.unlock()
        channel.closeFuture.whenComplete { [self] _ in lock.lock(); open -= 1; lock.unlock() }
    }
}

/// What every connection's handlers share: the decisions, the dialer, the access log, the
/// secrets (for injection and scrubbing) and the body limit.
final class ProxyServices: @unchecked Sendable {
    let connections = ConnectionCount()
    let rules: ProxyRules
    let dialer: UpstreamDialer
    let log: AccessLog
    let secrets: SecretStore
    let maxBodyBytes: Int
    /// nil when every entry splices: then no CA is needed.
    let termination: Termination?

    init(rules: ProxyRules, dialer: UpstreamDialer, log: AccessLog, secrets: SecretStore, maxBodyBytes: Int,
         termination: Termination? = nil) {
        self.rules = rules
        self.dialer = dialer
        self.log = log
        self.secrets = secrets
        self.maxBodyBytes = maxBodyBytes
        self.termination = termination
    }
}

/// `fwctl proxy`: the listener on `proxy.listen` (CONNECT and absolute-form HTTP), one per
/// `[[proxy.endpoint]]`, and with `transparent = true` the transparent port on 127.0.0.1
/// and ::1. One pipeline of small handlers per connection: the first decides what the
/// connection is, then hands it to a tunnel or to the per-request handlers.
public final class ProxyServer: @unchecked Sendable {
    static let decoderName = "fwctl.http-decoder"
    static let encoderName = "fwctl.http-encoder"

    private let group: MultiThreadedEventLoopGroup
    private let threadPool: NIOThreadPool
    let services: ProxyServices
    private let listen: SocketEndpoint
    private var channel: Channel?
    private let endpointListeners: [EndpointListener]
    private var endpointChannels: [Channel] = []
    /// The bound address of each `[[proxy.endpoint]]`, in policy order, once `start` returned.
    public private(set) var endpointAddresses: [SocketEndpoint] = []
    /// `proxy.transparent_port` when `transparent = true`.
    private let transparentPort: UInt16?
    private var transparentChannels: [Channel] = []
    /// Where the transparent listener listens (127.0.0.1, and ::1 when the host has IPv6).
    public private(set) var transparentAddresses: [SocketEndpoint] = []
    private let logger: Logger
    /// Started with the listeners, stopped with them.
    private var trimmer: HeapTrimmer?

    /// `dnsServers`: the resolvers the proxy asks for upstream names (the policy's).
    /// `secrets`: the store the injector and scrubber read (the caller keeps it to reload on
    /// SIGHUP); when nil, one is read from the process environment. `authority`: the CA for
    /// terminated tunnels; when nil and some entry terminates, loaded from `proxy.ca_dir`.
    public init(policy: Policy, dnsServers: [SocketEndpoint], logger: Logger, threads: Int = System.coreCount,
                secrets: SecretStore? = nil, authority: CertificateAuthority? = nil) throws {
        guard let settings = policy.proxy else { throw ProxyServerError("the policy has no [proxy] section") }
        let rules = ProxyRules(policy: policy)
        let store = try secrets ?? SecretStore(policy: policy)
        var termination: Termination?
        if rules.entries.contains(where: { !$0.splices }) {
            let ca = try authority ?? CertificateAuthority.load(caDir: settings.caDir)
            termination = try Termination(authority: ca, secrets: store, settings: settings)
        }
        listen = settings.listen
        transparentPort = settings.transparent ? settings.transparentPort : nil
        self.logger = logger
        group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        threadPool = NIOThreadPool(numberOfThreads: 2)
        threadPool.start()
        let resolver = FWResolve.Resolver(options: ResolverOptions(servers: dnsServers, timeoutMs: policy.dns.timeoutMs,
                                                         attempts: policy.dns.attempts, parallelism: 1))
        let services = ProxyServices(rules: rules,
                                     dialer: UpstreamDialer(resolver: resolver, guardrail: DialGuard(policy: policy), threadPool: threadPool),
                                     log: try AccessLog(path: settings.accessLog, logger: logger), secrets: store,
                                     maxBodyBytes: settings.maxBodyBytes, termination: termination)
        self.services = services
        if settings.endpoints.isEmpty {
            endpointListeners = []
        } else {
            let upstream = try termination.map(EndpointUpstream.init(termination:))
                ?? EndpointUpstream(secrets: store, settings: settings)
            endpointListeners = settings.endpoints.map { EndpointListener(endpoint: $0, services: services, upstream: upstream) }
        }
    }

    /// Binds and starts accepting; returns the bound address (port 0 picks a free one).
    @discardableResult
    public func start() throws -> SocketEndpoint {
        let bootstrap = Self.listener(group: group, services: services) { channel, services in
            channel.eventLoop.makeCompletedFuture {
                let sync = channel.pipeline.syncOperations
                try sync.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .forwardBytes)),
                                    name: Self.decoderName)
                try sync.addHandler(HTTPResponseEncoder(), name: Self.encoderName)
                try sync.addHandler(ConnectHandler(services: services))
            }
        }
        let ch = try bootstrap.bind(host: listen.address.description, port: Int(listen.port)).wait()
        channel = ch
        let bound = try Self.endpoint(of: ch)
        for listener in endpointListeners {
            let ep = try listener.bind(group: group)
            endpointChannels.append(ep)
            endpointAddresses.append(try Self.endpoint(of: ep))
        }
        if let port = transparentPort { try startTransparent(port: port) }
        trimmer = HeapTrimmer()
        return bound
    }

    /// Redirected connections land on 127.0.0.1 and ::1. A host without IPv6 loopback (many
    /// containers) gets the IPv4 listener only, and a notice: its IPv6 traffic cannot be
    /// redirected here either.
    private func startTransparent(port: UInt16) throws {
        let bootstrap = Self.listener(group: group, services: services) { channel, services in
            OriginalDestination.of(channel).flatMapThrowing { original in
                try channel.pipeline.syncOperations.addHandler(TransparentHandler(services: services, original: original))
            }
        }
        for host in ["127.0.0.1", "::1"] {
            do {
                let ch = try bootstrap.bind(host: host, port: Int(port)).wait()
                transparentChannels.append(ch)
                transparentAddresses.append(try Self.endpoint(of: ch))
            } catch let error as IOError where host == "::1" && [EADDRNOTAVAIL, EAFNOSUPPORT].contains(error.errnoCode) {
                // No IPv6 loopback here. Anything else (the port taken) is an error.
                logger.notice("transparent mode: no listener on [::1]:\(port) (\(error)); IPv4 only")
            }
        }
    }

    /// Every listener's socket settings; each accepted connection is counted (for the
    /// drain) before `initialize` sets up its pipeline.
    ///
    /// SO_REUSEPORT lets the next proxy (a second `fwctl up`) bind the same ports while this
    /// one still holds them, so they are never free for another user to take: the kernel
    /// admits a second socket on the port only with the same uid.
    ///
    /// Accepting keeps up under load: the listener shares an event loop with connections
    /// doing TLS, so each of its turns takes up to `acceptBatch` connections (NIO's default
    /// is 4), and the queue holds `backlog` (the kernel caps it at net.core.somaxconn).
    /// With 4 and 256, a burst of 1,000 clients overflowed the queue: SYNs were dropped,
    /// clients waited for retransmits and gave up, and half of them never got a connection.
    static func listener(group: EventLoopGroup, services: ProxyServices,
                         initialize: @escaping @Sendable (Channel, ProxyServices) -> EventLoopFuture<Void>) -> ServerBootstrap {
        ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: backlog)
            .serverChannelOption(.maxMessagesPerRead, value: acceptBatch)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .serverChannelOption(.socketOption(NIOBSDSocket.Option(rawValue: SO_REUSEPORT)), value: 1)
            .childChannelOption(.tcpOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                services.connections.track(channel)
                return initialize(channel, services)
            }
    }

    static let backlog: Int32 = 4096
    static let acceptBatch: UInt = 64

    private static func endpoint(of ch: Channel) throws -> SocketEndpoint {
        guard let local = ch.localAddress, let ip = local.ipAddress, let addr = IPAddress(ip), let port = local.port else {
            throw ProxyServerError("bound to an unexpected address")
        }
        return SocketEndpoint(address: addr, port: UInt16(port))
    }

    private let stopped = DispatchSemaphore(value: 0)
    private let stopOnce = NSLock()
    private var isStopped = false

    /// Blocks until the server has stopped (`stop` or `drain`).
    public func wait() {
        stopped.wait()
        stopped.signal()
    }

    /// Open client connections (tunnels, kept-alive requests, endpoint connections).
    public var openConnections: Int { services.connections.value }

    /// SIGTERM: stops accepting, lets open connections finish for up to `timeout`, then
    /// closes whatever is left and stops.
    public func drain(timeout: TimeAmount = .seconds(5)) {
        closeListeners()
        let deadline = NIODeadline.now() + timeout
        while services.connections.value > 0 && NIODeadline.now() < deadline { usleep(20_000) }
        stop()
    }

    /// Closes everything now.
    public func stop() {
        stopOnce.lock()
        defer { stopOnce.unlock() }
        guard !isStopped else { return }
        isStopped = true
        trimmer?.stop()
        closeListeners()
        services.log.flush()
        try? group.syncShutdownGracefully()
        try? threadPool.syncShutdownGracefully()
        services.log.flush()   // lines of connections closed by the shutdown
        stopped.signal()
    }

    private func closeListeners() {
        try? channel?.close().wait()
        for ep in endpointChannels + transparentChannels { try? ep.close().wait() }
    }
}

public struct ProxyServerError: Error, CustomStringConvertible {
    public let description: String
    init(_ d: String) { description = d }
}
