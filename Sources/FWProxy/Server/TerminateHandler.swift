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
    private var pin: SNIPin
    private let identity: String
    private let port: UInt16
    private let entry: ProxyEntry
    private let upstream: Channel
    private let services: ProxyServices
    private let termination: Termination
    private let started: NIODeadline
    private let arrival: Arrival
    /// Kept from when the handler was added: a closed channel no longer knows its peer.
    private var client = "-"

    init(identity: String, port: UInt16, entry: ProxyEntry, upstream: Channel, services: ProxyServices,
         termination: Termination, started: NIODeadline, arrival: Arrival = .mitm) {
        self.identity = identity
        self.pin = SNIPin(identity: identity, source: arrival.identitySource)
        self.arrival = arrival
        self.port = port
        self.entry = entry
        self.upstream = upstream
        self.services = services
        self.termination = termination
        self.started = started
    }

    func handlerAdded(context: ChannelHandlerContext) { client = context.client }

    /// A client that goes away before its ClientHello still leaves a line: the tunnel was
    /// answered 200 after an upstream connection and TLS handshake were made for it.
    func channelInactive(context: ChannelHandlerContext) {
        if state == .peeking {
            services.log.record(pin.endLine(client: client, arrival, port: port, since: started))
            _ = pin.take()
        }
        if state != .closed { upstream.close(promise: nil) }
        state = .closed
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .peeking else { return }
        switch pin.feed(unwrapInboundIn(data)) {
        case .needMoreData: return
        case .pinned: install(context: context)
        case .refused(let r): close(r, context: context)
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
            let forwarder = UpstreamForwarder(identity: identity, port: port, upstream: upstream, services: services, arrival: arrival)
            handlers = [
                tls,
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                HTTPServerPipelineHandler(),
                ResponseScrubber(secrets: termination.secrets),
                RequestGate(identity: identity, port: port, entry: entry, rules: services.rules,
                            injector: Injector(entry: entry, secrets: termination.secrets),
                            maxBodyBytes: termination.maxBodyBytes, log: services.log, arrival: arrival),
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
        if let hello = pin.take() {
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
        services.log.record(pin.endLine(client: client, arrival, port: port, since: started, refusal: r))
        _ = pin.take()
        context.close(promise: nil)
        upstream.close(promise: nil)
    }
}
