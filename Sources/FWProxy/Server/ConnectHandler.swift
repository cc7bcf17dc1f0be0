import FWPolicy
import NIOCore
import NIOHTTP1

/// The first handler on a client connection to `proxy.listen`: reads the CONNECT request,
/// decides with the policy, and either refuses it (a readable HTTP answer) or turns the
/// connection into a tunnel handled by `TunnelHandler`.
///
/// States, because bytes can arrive in any split: waiting for a request head; a CONNECT
/// was accepted and its end is awaited; the connection has become a tunnel (this handler
/// is gone then).
final class ConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case idle
        case awaitingEnd(host: String, port: UInt16, entry: ProxyEntry)
        case done
    }

    private var state = State.idle
    private let services: ProxyServices
    private let started = NIODeadline.now()

    init(services: ProxyServices) { self.services = services }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .idle):
            guard head.method == .CONNECT else {
                refuse(Refusal(kind: .methodNotAllowed, status: 405,
                               reason: "only CONNECT is supported on this port for now (absolute-form HTTP is not yet)"),
                       host: head.uri, port: 0, context: context)
                return
            }
            guard let (host, port) = Self.authority(head.uri) else {
                refuse(Refusal(kind: .hostNotAllowed, status: 400, reason: "CONNECT target \"\(head.uri)\" is not HOST:PORT"),
                       host: head.uri, port: 0, context: context)
                return
            }
            switch services.rules.entry(host: host, port: port) {
            case .failure(let r):
                refuse(r, host: host, port: port, context: context)
            case .success(let entry) where !entry.splices:
                refuse(Refusal(kind: .upstreamFailed, status: 501,
                               reason: "\(host) has methods, paths or inject rules; terminating TLS is not implemented yet"),
                       host: host, port: port, context: context)
            case .success(let entry):
                state = .awaitingEnd(host: HostPattern.normalize(host) ?? host, port: port, entry: entry)
            }
        case (.end, .awaitingEnd(let host, let port, _)):
            state = .done
            dial(host: host, port: port, context: context)
        case (.body, .awaitingEnd), (.body, .idle), (.end, .idle), (_, .done):
            break
        case (.head, _):
            // A second request before the first was handled: not a proxy client.
            context.close(promise: nil)
        }
    }

    /// Dials before answering: an upstream that does not resolve, is down, or resolves to a
    /// guarded address gets a readable refusal while the client still speaks HTTP. The
    /// upstream reads nothing until the tunnel is glued.
    private func dial(host: String, port: UInt16, context: ChannelHandlerContext) {
        services.dialer.dial(host: host, port: port, on: context.eventLoop) { channel in
            channel.setOption(.autoRead, value: false)
        }.whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                becomeTunnel(host: host, port: port, upstream: upstream, context: context)
            case .failure(UpstreamDialer.Failure.refused(let r)):
                refuse(r, host: host, port: port, context: context)
            case .failure(let error):
                refuse(Refusal(kind: .upstreamFailed, status: 502, reason: "cannot connect to \(host):\(port): \(error)"),
                       host: host, port: port, context: context)
            }
        }
    }

    /// Removes the HTTP codecs (any bytes already read go on to the tunnel), answers 200 and
    /// hands the connection to a TunnelHandler that pins the TLS SNI to the CONNECT target.
    private func becomeTunnel(host: String, port: UInt16, upstream: Channel, context: ChannelHandlerContext) {
        let tunnel = TunnelHandler(identity: host, port: port, upstream: upstream, services: services, started: started)
        let pipeline = context.pipeline
        pipeline.addHandler(tunnel, position: .after(self))
            .flatMap { pipeline.removeHandler(name: ProxyServer.encoderName) }
            .flatMap { ResponseWriter.connectEstablished(context: context) }
            .flatMap { pipeline.removeHandler(self) }
            .flatMap { pipeline.removeHandler(name: ProxyServer.decoderName) }
            .whenFailure { _ in
                context.close(promise: nil)
                upstream.close(promise: nil)
            }
    }

    private func refuse(_ r: Refusal, host: String, port: UInt16, context: ChannelHandlerContext) {
        state = .done
        services.log.record(.init(client: context.remoteAddress?.description ?? "-", mode: "splice", host: host, port: Int(port),
                                  method: "CONNECT", path: nil, status: r.status, bytesUp: 0, bytesDown: 0,
                                  durationMs: Int((NIODeadline.now() - started).nanoseconds / 1_000_000), reason: r.reason))
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }

    /// "host:port" or "[v6]:port"; the port is required for CONNECT.
    static func authority(_ uri: String) -> (String, UInt16)? {
        guard let colon = uri.lastIndex(of: ":"), let port = UInt16(uri[uri.index(after: colon)...]), port > 0 else { return nil }
        let host = String(uri[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}
