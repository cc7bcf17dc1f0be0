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
    private var buffered: ByteBuffer?
    private let identity: String
    private let port: UInt16
    private let upstream: Channel
    private let services: ProxyServices
    private let started: NIODeadline

    init(identity: String, port: UInt16, upstream: Channel, services: ProxyServices, started: NIODeadline) {
        self.identity = identity
        self.port = port
        self.upstream = upstream
        self.services = services
        self.started = started
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .peeking { upstream.close(promise: nil) }
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
            if let r = ProxyRules.checkIdentity(identity, seen: sni, what: "TLS SNI") { return close(r, context: context) }
            glue(context: context)
        case .noSNI:
            close(Refusal(kind: .identityMismatch, status: 421, reason: "no TLS SNI; the tunnel to \(identity) needs one naming it"), context: context)
        case .notTLS, .malformed:
            close(Refusal(kind: .identityMismatch, status: 421, reason: "the tunnel to \(identity) did not start with a TLS ClientHello"), context: context)
        }
    }

    private func glue(context: ChannelHandlerContext) {
        state = .glued
        let (clientGlue, upstreamGlue) = GlueHandler.matched()
        let client = context.remoteAddress?.description ?? "-"
        let started = self.started, log = services.log, host = identity, port = self.port
        clientGlue.onClose = { up in
            log.record(.init(client: client, mode: "splice", host: host, port: Int(port), method: "CONNECT", path: nil,
                             status: 200, bytesUp: up, bytesDown: upstreamGlue.bytesIn,
                             durationMs: Int((NIODeadline.now() - started).nanoseconds / 1_000_000), reason: nil))
        }
        let hello = buffered
        buffered = nil
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
        services.log.record(.init(client: context.remoteAddress?.description ?? "-", mode: "splice", host: identity, port: Int(port),
                                  method: "CONNECT", path: nil, status: r.status, bytesUp: buffered?.readableBytes ?? 0, bytesDown: 0,
                                  durationMs: Int((NIODeadline.now() - started).nanoseconds / 1_000_000), reason: r.reason))
        buffered = nil
        context.close(promise: nil)
        upstream.close(promise: nil)
    }
}
