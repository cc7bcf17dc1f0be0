import FWPolicy
import NIOCore
import NIOHTTP1
import NIOSSL

/// Dials the upstream once the first request has passed the gate, then puts an
/// UpstreamForwarder in its place. A client that is refused (wrong key, method, path) never
/// causes a connection to the upstream, and learns why it was refused even when the upstream
/// is down. Base-URL endpoints use it: their target is fixed, so nothing but the first
/// request can tell whether the connection will be used.
///
/// States: waiting for the first request; dialing (the client is not read; the request's
/// parts wait in order); gone (the forwarder took over) or refused.
final class DeferredUpstream: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GatedRequestPart
    typealias InboundOut = GatedRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case dialing([GatedRequestPart])
        case refused
    }

    private var state = State.idle
    private let host: String
    private let port: UInt16
    private let tls: NIOSSLContext
    private let services: ProxyServices
    private let arrival: Arrival

    init(host: String, port: UInt16, tls: NIOSSLContext, services: ProxyServices, arrival: Arrival) {
        self.host = host
        self.port = port
        self.tls = tls
        self.services = services
        self.arrival = arrival
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch state {
        case .refused:
            break
        case .dialing(var pending):
            pending.append(part)
            state = .dialing(pending)
        case .idle:
            guard case .head(let head, _) = part else { return context.close(promise: nil) }
            state = .dialing([part])
            context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
            let started = NIODeadline.now()
            services.dialer.dialHTTP(host: host, port: port, tls: tls, on: context.eventLoop).whenComplete { [self] result in
                switch result {
                case .success(let upstream):
                    handOver(to: upstream, context: context)
                case .failure(let error):
                    refuse(UpstreamDialer.refusal(for: error, host: host, port: port), head: head, started: started, context: context)
                }
            }
        }
    }

    private func handOver(to upstream: Channel, context: ChannelHandlerContext) {
        guard case .dialing(let pending) = state, context.channel.isActive else { return upstream.close(promise: nil) }
        let forwarder = UpstreamForwarder(identity: host, port: port, upstream: upstream, services: services, arrival: arrival)
        do {
            try context.pipeline.syncOperations.addHandler(forwarder, position: .after(self))
        } catch {
            upstream.close(promise: nil)
            return context.close(promise: nil)
        }
        state = .idle
        for part in pending { context.fireChannelRead(wrapInboundOut(part)) }
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(self, promise: nil)
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }

    private func refuse(_ r: Refusal, head: HTTPRequestHead, started: NIODeadline, context: ChannelHandlerContext) {
        state = .refused
        services.log.record(.init(client: context.client, arrival, host: host, port: port, method: head.method.rawValue,
                                  path: PathGlob.pathPart(of: head.uri), status: r.status, since: started, reason: r.reason))
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }
}
