import FWPolicy
import NIOCore
import NIOHTTP1

/// The first handler on a client connection to `proxy.listen`: reads the first request.
/// A CONNECT is decided with the policy and either refused (a readable HTTP answer) or
/// turned into a tunnel (`TunnelHandler` splices, `TerminateHandler` terminates). Any
/// other method makes the connection a plain-HTTP proxy connection (`PlainHTTPFront`,
/// which takes absolute-form "http://" targets).
///
/// States, because bytes can arrive in any split: waiting for a request head; a CONNECT
/// was accepted and its end is awaited; the connection has become a tunnel or a plain-HTTP
/// proxy connection (this handler is gone then).
final class ConnectHandler: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
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
                return becomePlainProxy(head: head, context: context)
            }
            guard let (host, port) = Self.authority(head.uri) else {
                refuse(Refusal(kind: .hostNotAllowed, status: 400, reason: "CONNECT target \"\(head.uri)\" is not HOST:PORT"),
                       host: head.uri, port: 0, context: context)
                return
            }
            switch services.rules.entry(host: host, port: port) {
            case .failure(let r):
                refuse(r, host: host, port: port, context: context)
            case .success(let entry) where !entry.splices && services.termination == nil:
                // ProxyServer loads the CA whenever an entry terminates; this is a guard only.
                refuse(Refusal(kind: .upstreamFailed, status: 502,
                               reason: "\(host) has methods, paths or inject rules, and the proxy has no CA loaded"),
                       host: host, port: port, context: context)
            case .success(let entry):
                state = .awaitingEnd(host: HostPattern.normalize(host) ?? host, port: port, entry: entry)
            }
        case (.end, .awaitingEnd(let host, let port, let entry)):
            state = .done
            if entry.splices {
                dial(host: host, port: port, context: context)
            } else if let termination = services.termination {
                dialTerminated(host: host, port: port, entry: entry, termination: termination, context: context)
            }
        case (.body, .awaitingEnd), (.body, .idle), (.end, .idle), (_, .done):
            break
        case (.head, _):
            // A second request before the first was handled: not a proxy client.
            context.close(promise: nil)
        }
    }

    /// Puts NIO's pipelining guard (one request at a time), the scrubber and the plain-HTTP
    /// front behind this handler, hands them the head and steps aside; the rest of the
    /// request goes straight to them.
    private func becomePlainProxy(head: HTTPRequestHead, context: ChannelHandlerContext) {
        state = .done
        let handlers: [ChannelHandler] = [
            HTTPServerPipelineHandler(),
            ResponseScrubber(secrets: services.secrets),
            PlainHTTPFront(services: services, routing: .absoluteForm, arrival: .http),
        ]
        do {
            try context.pipeline.syncOperations.addHandlers(handlers, position: .after(self))
        } catch {
            return context.close(promise: nil)
        }
        context.fireChannelRead(wrapInboundOut(.head(head)))
        context.pipeline.removeHandler(self, promise: nil)
    }

    /// Dials before answering: an upstream that does not resolve, is down, or resolves to a
    /// guarded address gets a readable refusal while the client still speaks HTTP. The
    /// upstream reads nothing until the tunnel is glued.
    private func dial(host: String, port: UInt16, context: ChannelHandlerContext) {
        services.dialer.dialForSplice(host: host, port: port, on: context.eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                becomeTunnel(host: host, port: port, upstream: upstream, context: context)
            case .failure(let error):
                refuse(UpstreamDialer.refusal(for: error, host: host, port: port), host: host, port: port, context: context)
            }
        }
    }

    /// Hands the connection to a TunnelHandler that pins the TLS SNI to the CONNECT target.
    private func becomeTunnel(host: String, port: UInt16, upstream: Channel, context: ChannelHandlerContext) {
        handOver(to: TunnelHandler(identity: host, port: port, upstream: upstream, services: services, started: started),
                 upstream: upstream, context: context)
    }

    /// The terminate path: dials as the splice path does, and also completes the upstream
    /// TLS handshake (hostname verified against the CONNECT target) before answering, so
    /// an upstream with a bad certificate is a readable 502 too. Then answers 200 and hands
    /// the connection to a TerminateHandler, which pins the SNI and starts TLS.
    private func dialTerminated(host: String, port: UInt16, entry: ProxyEntry, termination: Termination,
                                context: ChannelHandlerContext) {
        services.dialer.dialHTTP(host: host, port: port, tls: termination.upstreamContext, on: context.eventLoop)
            .whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                let handler = TerminateHandler(identity: host, port: port, entry: entry, upstream: upstream, services: services,
                                               termination: termination, started: started)
                handOver(to: handler, upstream: upstream, context: context)
            case .failure(let error):
                refuse(UpstreamDialer.refusal(for: error, host: host, port: port), host: host, port: port, context: context, arrival: .mitm)
            }
        }
    }

    /// Removes the HTTP codecs (bytes already read go on to `handler`), answers 200 and
    /// leaves the connection to `handler`.
    private func handOver(to handler: ChannelHandler, upstream: Channel, context: ChannelHandlerContext) {
        let pipeline = context.pipeline
        pipeline.addHandler(handler, position: .after(self))
            .flatMap { pipeline.removeHandler(name: ProxyServer.encoderName) }
            .flatMap { ResponseWriter.connectEstablished(context: context) }
            .flatMap { pipeline.removeHandler(self) }
            .flatMap { pipeline.removeHandler(name: ProxyServer.decoderName) }
            .whenFailure { _ in
                context.close(promise: nil)
                upstream.close(promise: nil)
            }
    }

    private func refuse(_ r: Refusal, host: String, port: UInt16, context: ChannelHandlerContext, arrival: Arrival = .splice) {
        state = .done
        services.log.record(.init(client: context.client, arrival, host: host, port: port, method: "CONNECT", path: nil,
                                  status: r.status, since: started, reason: r.reason))
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }

    /// "host:port" or "[v6]:port"; the port is required for CONNECT.
    static func authority(_ uri: String) -> (String, UInt16)? {
        guard let colon = uri.lastIndex(of: ":"), let port = UInt16(uri[uri.index(after: colon)...]), port > 0 else { return nil }
        let host = String(uri[..<colon])
        return host.isEmpty ? nil : (host, port)
    }
}
