import FWPolicy
import NIOCore

/// A spliced CONNECT tunnel: reads the client's TLS ClientHello, requires its SNI to be the
/// CONNECT target (domain fronting otherwise), then glues the client to the upstream
/// (already connected, reading nothing yet) and steps aside. The bytes are never decrypted,
/// and none reach the upstream before the SNI is checked.
final class TunnelHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer

    private enum State { case peeking, glued, closed }

    private var state = State.peeking
    private var pin: SNIPin
    private let identity: String
    private let port: UInt16
    private let upstream: Channel
    private let services: ProxyServices
    private let started: NIODeadline
    private let arrival: Arrival
    /// Kept from when the handler was added: a closed channel no longer knows its peer.
    private var client = "-"

    init(identity: String, port: UInt16, upstream: Channel, services: ProxyServices, started: NIODeadline,
         arrival: Arrival = .splice) {
        self.identity = identity
        self.pin = SNIPin(identity: identity, source: arrival.identitySource)
        self.arrival = arrival
        self.port = port
        self.upstream = upstream
        self.services = services
        self.started = started
    }

    func handlerAdded(context: ChannelHandlerContext) { client = context.client }

    /// A client that goes away before its ClientHello still leaves a line: the tunnel was
    /// answered 200 and an upstream connection was made for it.
    func channelInactive(context: ChannelHandlerContext) {
        if state == .peeking {
            state = .closed
            services.log.record(pin.endLine(client: client, arrival, port: port, since: started))
            _ = pin.take()
            upstream.close(promise: nil)
        }
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard state == .peeking else { return }
        switch pin.feed(unwrapInboundIn(data)) {
        case .needMoreData: return
        case .pinned: glue(context: context)
        case .refused(let r): close(r, context: context)
        }
    }

    private func glue(context: ChannelHandlerContext) {
        state = .glued
        let (clientGlue, upstreamGlue) = GlueHandler.matched()
        let client = self.client
        let started = self.started, log = services.log, host = identity, port = self.port, arrival = self.arrival
        clientGlue.onClose = { up in
            log.record(.init(client: client, arrival, host: host, port: port, method: "CONNECT", path: nil, status: 200,
                             bytesUp: up, bytesDown: upstreamGlue.bytesIn, since: started, reason: nil))
        }
        let hello = pin.take()
        let upstream = self.upstream
        upstream.pipeline.addHandler(upstreamGlue)
            .flatMap { upstream.setOption(.autoRead, value: true) }
            .flatMap { hello.map { upstream.writeAndFlush($0) } ?? upstream.eventLoop.makeSucceededVoidFuture() }
            .hop(to: context.eventLoop)
            .flatMap { context.pipeline.addHandler(clientGlue, position: .after(self)) }
            .flatMap { context.pipeline.removeHandler(self) }
            .whenComplete { result in
                if case .failure = result {
                    context.close(promise: nil)
                    upstream.close(promise: nil)
                }
            }
    }

    /// Refusals inside a tunnel cannot be HTTP answers (the client speaks TLS now): the
    /// connection is closed and the reason logged.
    private func close(_ r: Refusal, context: ChannelHandlerContext) {
        guard state != .closed else { return }
        state = .closed
        services.log.record(pin.endLine(client: client, arrival, port: port, since: started, refusal: r))
        _ = pin.take()
        context.close(promise: nil)
        upstream.close(promise: nil)
    }
}
