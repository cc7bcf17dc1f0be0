import FWPolicy
import NIOCore
import NIOHTTP1
#if canImport(Glibc)
import Glibc
#endif

/// The first handler on a connection the firewall redirected to `proxy.transparent_port`.
/// The client believes it is talking to the site itself, so the proxy learns the identity
/// from the first bytes: the SNI of a TLS ClientHello, or the Host header of plain HTTP.
/// The identity decides everything (the entry, where to dial, what certificate to mint);
/// the address the client dialed (SO_ORIGINAL_DST) is only logged, and its port is the
/// port the request is for.
///
/// TLS: once the identity and entry are known and the upstream is connected, a
/// TunnelHandler (splice) or TerminateHandler (terminate) takes over with the hello still
/// unread, so the same SNI pin runs as for a CONNECT tunnel. Plain HTTP: the HTTP codecs and
/// a PlainHTTPFront take over, held to the first Host header.
///
/// States: peeking at the first bytes; dialing (the client is not read; what arrived is
/// kept); handed over (this handler is gone); closed after a refusal.
final class TransparentHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum State { case peeking, dialing, handedOver, closed }

    /// A ClientHello larger than this is not waited for.
    static let maxPeekBytes = 64 * 1024

    private var state = State.peeking
    private var buffered: ByteBuffer?
    private let services: ProxyServices
    private let original: OriginalDestination?
    private let started = NIODeadline.now()

    init(services: ProxyServices, original: OriginalDestination?) {
        self.services = services
        self.original = original
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        if buffered == nil { buffered = bytes } else { buffered!.writeBuffer(&bytes) }
        guard state == .peeking, let first = buffered?.readableBytesView.first else { return }
        guard first == 0x16 else { return becomePlainHTTP(context: context) }
        switch ClientHello.parse(Array(buffered!.readableBytesView)) {
        case .needMoreData:
            if buffered!.readableBytes > Self.maxPeekBytes {
                close(Refusal(.identityMismatch, "the TLS ClientHello is larger than \(Self.maxPeekBytes) bytes"),
                      host: "-", port: tlsPort, context: context)
            }
        case .sni(let sni):
            decideTLS(sni: sni, context: context)
        case .noSNI:
            close(Refusal(.identityMismatch, "no TLS SNI; a redirected TLS connection is identified by it"),
                  host: "-", port: tlsPort, context: context)
        case .notTLS, .malformed:
            close(Refusal(.identityMismatch, "the connection did not start with a well-formed TLS ClientHello"),
                  host: "-", port: tlsPort, context: context)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .peeking || state == .dialing { state = .closed }
        context.fireChannelInactive()
    }

    /// The port the client dialed; 443 when the kernel did not say (not redirected).
    private var tlsPort: UInt16 { original?.port ?? 443 }

    private func arrival(_ source: String) -> Arrival {
        .transparent(identitySource: source, originalDestination: original?.description)
    }

    private func decideTLS(sni: String, context: ChannelHandlerContext) {
        let host = HostPattern.normalize(sni) ?? sni
        let port = tlsPort
        let entry: ProxyEntry
        switch services.rules.entry(host: host, port: port) {
        case .failure(let r): return close(r, host: host, port: port, context: context)
        case .success(let e): entry = e
        }
        let arrival = arrival("TLS SNI")
        state = .dialing
        context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        if entry.splices {
            services.dialer.dialForSplice(host: host, port: port, on: context.eventLoop).whenComplete { [self] result in
                handOver(result, host: host, port: port, context: context) { upstream in
                    TunnelHandler(identity: host, port: port, upstream: upstream, services: services, started: started, arrival: arrival)
                }
            }
        } else if let termination = services.termination {
            services.dialer.dialHTTP(host: host, port: port, tls: termination.upstreamContext, on: context.eventLoop)
                .whenComplete { [self] result in
                    handOver(result, host: host, port: port, context: context) { upstream in
                        TerminateHandler(identity: host, port: port, entry: entry, upstream: upstream, services: services,
                                         termination: termination, started: started, arrival: arrival)
                    }
                }
        } else {
            // ProxyServer loads the CA whenever an entry terminates; this is a guard only.
            close(Refusal(.upstreamFailed, "\(host) has methods, paths or inject rules, and the proxy has no CA loaded"),
                  host: host, port: port, context: context)
        }
    }

    /// Puts the tunnel handler behind this one, gives it every byte read so far (the hello
    /// first) and steps aside.
    private func handOver(_ result: Result<Channel, Error>, host: String, port: UInt16, context: ChannelHandlerContext,
                          make: (Channel) -> ChannelHandler) {
        let upstream: Channel
        switch result {
        case .failure(let error):
            return close(UpstreamDialer.refusal(for: error, host: host, port: port), host: host, port: port, context: context)
        case .success(let u): upstream = u
        }
        guard state == .dialing, context.channel.isActive else { return upstream.close(promise: nil) }
        do {
            try context.pipeline.syncOperations.addHandler(make(upstream), position: .after(self))
        } catch {
            upstream.close(promise: nil)
            return close(.upstreamFailed(host: host, port: port, detail: "\(error)"), host: host, port: port, context: context)
        }
        replayAndLeave(context: context)
    }

    /// Plain HTTP: the HTTP server codecs, NIO's pipelining guard, the scrubber and a
    /// PlainHTTPFront pinned to the first Host header.
    private func becomePlainHTTP(context: ChannelHandlerContext) {
        let port = original?.port ?? 80
        let handlers: [ChannelHandler] = [
            HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
            HTTPServerPipelineHandler(),
            ResponseScrubber(secrets: services.secrets),
            PlainHTTPFront(services: services, routing: .hostHeader(port: port), arrival: arrival("connection's first Host header")),
        ]
        do {
            try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
        } catch {
            return close(.upstreamFailed(host: "-", port: port, detail: "\(error)"), host: "-", port: port, context: context)
        }
        replayAndLeave(context: context)
    }

    private func replayAndLeave(context: ChannelHandlerContext) {
        state = .handedOver
        if let bytes = buffered {
            buffered = nil
            context.fireChannelRead(NIOAny(bytes))
            context.fireChannelReadComplete()
        }
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }

    /// Before any handshake the client cannot read an HTTP answer: the connection is closed
    /// and the reason logged.
    private func close(_ r: Refusal, host: String, port: UInt16, context: ChannelHandlerContext) {
        guard state != .closed else { return }
        state = .closed
        services.log.record(.init(client: context.client, arrival("TLS SNI"), host: host, port: port, method: nil, path: nil,
                                  status: r.status, bytesUp: buffered?.readableBytes ?? 0, since: started, reason: r.reason))
        buffered = nil
        context.close(promise: nil)
    }
}

/// Where a redirected client was really going: SO_ORIGINAL_DST (IPv4) or
/// IP6T_SO_ORIGINAL_DST (IPv6), which conntrack keeps for a NATed connection.
struct OriginalDestination: CustomStringConvertible, Sendable {
    let address: IPAddress
    let port: UInt16

    var description: String { address.family == .ipv6 ? "[\(address)]:\(port)" : "\(address):\(port)" }

    /// SO_ORIGINAL_DST and IP6T_SO_ORIGINAL_DST share the number 80 (linux/netfilter_ipv4.h,
    /// linux/netfilter_ipv6/ip6_tables.h).
    private static let soOriginalDst: Int32 = 80

    /// The original destination of `channel`, or nil when the kernel has none or it is the
    /// listener itself (a client that connected to the transparent port directly).
    static func of(_ channel: Channel) -> EventLoopFuture<OriginalDestination?> {
        guard let provider = channel as? SocketOptionProvider, let local = channel.localAddress else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        let found: EventLoopFuture<OriginalDestination?>
        switch local {
        case .v6:
            found = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IPV6), name: SocketOptionName(soOriginalDst))
                .map { (sin6: sockaddr_in6) in
                    let a = SocketAddress(sin6, host: "")
                    return a.ipAddress.flatMap(IPAddress.init).map { OriginalDestination(address: $0, port: UInt16(bigEndian: sin6.sin6_port)) }
                }
        default:
            found = provider.unsafeGetSocketOption(level: SocketOptionLevel(IPPROTO_IP), name: SocketOptionName(soOriginalDst))
                .map { (sin: sockaddr_in) in
                    let a = SocketAddress(sin, host: "")
                    return a.ipAddress.flatMap(IPAddress.init).map { OriginalDestination(address: $0, port: UInt16(bigEndian: sin.sin_port)) }
                }
        }
        return found.map { dst in
            guard let dst, dst.port != UInt16(local.port ?? 0) || dst.address.description != local.ipAddress else { return nil }
            return dst
        }.recover { _ in nil }
    }
}
