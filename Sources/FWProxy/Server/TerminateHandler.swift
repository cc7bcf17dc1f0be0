import FWPolicy
import NIOCore
import NIOHTTP1
import NIOSSL

/// The TLS set-up of a terminated CONNECT tunnel. It reads the client's ClientHello before
/// any TLS is spoken, requires its SNI to be the CONNECT target (the same pin as a spliced
/// tunnel; checked here rather than in an SNI callback so the refusal is logged with the
/// connection's client and target), then puts a TLS server with a leaf for the target,
/// HTTP/1.1 server codecs and the per-request handlers behind itself, replays the hello
/// and steps aside.
///
/// States: peeking at the hello; the pipeline is being replaced (bytes that arrive
/// meanwhile are kept and replayed); closed after a refusal.
final class TerminateHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum State { case peeking, installing, closed }

    private var state = State.peeking
    private var buffered: ByteBuffer?
    private let identity: String
    private let port: UInt16
    private let entry: ProxyEntry
    private let upstream: Channel
    private let services: ProxyServices
    private let termination: Termination
    private let started: NIODeadline

    init(identity: String, port: UInt16, entry: ProxyEntry, upstream: Channel, services: ProxyServices,
         termination: Termination, started: NIODeadline) {
        self.identity = identity
        self.port = port
        self.entry = entry
        self.upstream = upstream
        self.services = services
        self.termination = termination
        self.started = started
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state != .closed { upstream.close(promise: nil) }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var incoming = unwrapInboundIn(data)
        if buffered == nil { buffered = incoming } else { buffered!.writeBuffer(&incoming) }
        guard state == .peeking, let bytes = buffered else { return }
        switch ClientHello.parse(Array(bytes.readableBytesView)) {
        case .needMoreData:
            return
        case .sni(let sni):
            if let r = ProxyRules.checkIdentity(identity, seen: sni, what: "TLS SNI", against: "CONNECT target") {
                return close(r, context: context)
            }
            install(context: context)
        case .noSNI:
            close(Refusal(.identityMismatch, "no TLS SNI; the tunnel to \(identity) needs one naming it"), context: context)
        case .notTLS, .malformed:
            close(Refusal(.identityMismatch, "the tunnel to \(identity) did not start with a TLS ClientHello"), context: context)
        }
    }

    /// Order on the client channel, head to tail: TLS, response encoder, request decoder,
    /// NIO's pipelining guard (one request at a time on a kept-alive connection), the
    /// scrubber (outbound), the gate (checks and injection), the forwarder (to the upstream).
    private func install(context: ChannelHandlerContext) {
        state = .installing
        let handlers: [ChannelHandler]
        do {
            let tls = NIOSSLServerHandler(context: try termination.serverContext(for: identity))
            let forwarder = UpstreamForwarder(identity: identity, port: port, upstream: upstream, services: services)
            handlers = [
                tls,
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPServerPipelineHandler(),
                ResponseScrubber(secrets: termination.secrets),
                RequestGate(identity: identity, port: port, entry: entry, rules: services.rules,
                            injector: Injector(entry: entry, secrets: termination.secrets),
                            maxBodyBytes: termination.maxBodyBytes, log: services.log),
                forwarder,
            ]
        } catch {
            return close(Refusal(.upstreamFailed, "cannot mint a certificate for \(identity): \(error)"), context: context)
        }
        do {
            try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
        } catch {
            return close(Refusal(.upstreamFailed, "cannot set up TLS for \(identity): \(error)"), context: context)
        }
        // The hello goes to the TLS handler just added; removal of a handler is immediate on
        // the event loop, so later bytes reach TLS directly.
        if let hello = buffered {
            buffered = nil
            context.fireChannelRead(NIOAny(hello))
            context.fireChannelReadComplete()
        }
        context.pipeline.removeHandler(self, promise: nil)
    }

    /// Before the TLS handshake the client cannot read an HTTP answer: the connection is
    /// closed and the reason logged, as for a spliced tunnel.
    private func close(_ r: Refusal, context: ChannelHandlerContext) {
        guard state != .closed else { return }
        state = .closed
        services.log.record(.init(client: context.remoteAddress?.description ?? "-", mode: "mitm", host: identity, port: Int(port),
                                  method: "CONNECT", path: nil, status: r.status, bytesUp: buffered?.readableBytes ?? 0, bytesDown: 0,
                                  durationMs: Int((NIODeadline.now() - started).nanoseconds / 1_000_000), reason: r.reason))
        buffered = nil
        context.close(promise: nil)
        upstream.close(promise: nil)
    }
}
