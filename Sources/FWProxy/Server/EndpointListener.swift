import FWPolicy
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL

/// What base-URL endpoints need beyond ProxyServices: the upstream TLS context, the secrets
/// and the body limit. Taken from `Termination` when the proxy has one; otherwise made
/// without a CA (an endpoint never presents a certificate to the sandbox).
final class EndpointUpstream: @unchecked Sendable {
    let upstreamContext: NIOSSLContext
    let secrets: SecretStore
    let maxBodyBytes: Int

    init(termination: Termination) {
        upstreamContext = termination.upstreamContext
        secrets = termination.secrets
        maxBodyBytes = termination.maxBodyBytes
    }

    /// System trust store plus `upstream_ca`, HTTP/1.1 only, as `Termination` builds it.
    init(secrets: SecretStore, settings: ProxySettings) throws {
        upstreamContext = try Termination.upstreamTLS(settings)
        self.secrets = secrets
        maxBodyBytes = settings.maxBodyBytes
    }
}

/// One `[[proxy.endpoint]]`, base-URL mode: plain HTTP/1.1 in from the sandbox on `listen`
/// (no CONNECT, no TLS, so the client needs no CA), verified TLS out to `target`.
///
/// The identity is the target's host, fixed by the policy: whatever Host the client sends
/// is replaced by it, and the target's path prefix is put in front of each request path.
/// Then the terminate path's handlers do the rest: RequestGate (method, path, body limit,
/// injection) against the `via = "proxy"` entry that covers the target host and port,
/// UpstreamForwarder and ResponseScrubber. The entry is looked up once, at start; when none
/// covers the target, every request gets that refusal (403).
///
/// One upstream connection per client connection, dialed (through the dial-time guard)
/// and TLS-handshaken when the first request has passed the gate; a failure there answers
/// that request with a readable 502.
final class EndpointListener: @unchecked Sendable {
    let endpoint: ProxyEndpoint
    private let decision: Result<ProxyEntry, Refusal>
    private let services: ProxyServices
    private let upstream: EndpointUpstream
    private let host: String
    private let port: UInt16

    init(endpoint: ProxyEndpoint, services: ProxyServices, upstream: EndpointUpstream) {
        self.endpoint = endpoint
        self.services = services
        self.upstream = upstream
        host = endpoint.target.host.name
        port = endpoint.target.port
        if endpoint.target.scheme != "https" {
            decision = .failure(Refusal(.upstreamFailed, "endpoint target \(endpoint.target) is not https; only TLS upstreams are supported"))
        } else {
            decision = services.rules.entry(host: endpoint.target.host.name, port: endpoint.target.port)
        }
    }

    /// The Host header the upstream gets: the target host, with its port unless 443.
    var authority: String { port == 443 ? host : "\(host):\(port)" }

    func bind(group: EventLoopGroup) throws -> Channel {
        let bootstrap = ProxyServer.listener(group: group, services: services) { [self] channel, _ in initialize(channel) }
        return try bootstrap.bind(host: endpoint.listen.address.description, port: Int(endpoint.listen.port)).wait()
    }

    private func initialize(_ channel: Channel) -> EventLoopFuture<Void> {
        switch decision {
        case .failure(let r): return installRefusing(channel, r)
        case .success(let entry): return channel.eventLoop.makeCompletedFuture { try install(channel, entry: entry) }
        }
    }

    /// Head to tail: response encoder, request decoder, NIO's pipelining guard, the
    /// scrubber, the endpoint front (Host and path prefix), the gate, then the upstream: dialed
    /// (through the dial-time guard, TLS verified) when the first request has passed the gate.
    private func install(_ channel: Channel, entry: ProxyEntry) throws {
        let sync = channel.pipeline.syncOperations
        try sync.addHandlers([
            HTTPResponseEncoder(),
            ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
            HTTPServerPipelineHandler(),
            ResponseScrubber(secrets: upstream.secrets),
            EndpointFront(listener: self, refusal: nil),
            RequestGate(identity: host, port: port, entry: entry, rules: services.rules,
                        injector: Injector(entry: entry, secrets: upstream.secrets),
                        maxBodyBytes: upstream.maxBodyBytes, log: services.log, arrival: .endpoint),
            DeferredUpstream(host: host, port: port, tls: upstream.upstreamContext, services: services, arrival: .endpoint),
        ])
    }

    /// Every request on the connection gets `r`.
    private func installRefusing(_ channel: Channel, _ r: Refusal) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            try channel.pipeline.syncOperations.addHandlers([
                HTTPResponseEncoder(),
                ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)),
                EndpointFront(listener: self, refusal: r),
            ])
        }
    }

    /// The upstream path: the target's prefix (without a trailing "/") before `uri`.
    func upstreamPath(_ uri: String) -> String {
        var prefix = endpoint.target.path
        while prefix.hasSuffix("/") { prefix.removeLast() }
        return prefix + uri
    }

    fileprivate func record(_ r: Refusal, method: String, path: String, context: ChannelHandlerContext, started: NIODeadline) {
        services.log.record(.init(client: context.client, .endpoint, host: host, port: port, method: method,
                                  path: PathGlob.pathPart(of: path), status: r.status, since: started, reason: r.reason))
    }
}

/// The endpoint's own step on each request head, before the gate: only origin-form
/// targets ("/path"), the target's path prefix put in front, and the Host header set to
/// the target (the client's Host names the endpoint, not the upstream). With a `refusal`
/// (no entry covers the target, or the upstream could not be reached) every request is
/// answered with it.
final class EndpointFront: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let listener: EndpointListener
    private let refusal: Refusal?
    private var refused = false

    init(listener: EndpointListener, refusal: Refusal?) {
        self.listener = listener
        self.refusal = refusal
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        guard case .head(var head) = part else {
            if !refused { context.fireChannelRead(data) }
            return
        }
        if let r = refusal {
            return refuse(r, head: head, context: context)
        }
        guard head.uri.hasPrefix("/") else {
            return refuse(Refusal(kind: .hostNotAllowed, status: 400,
                                  reason: "request target \(Refusal.quote(head.uri)) is not a path; this endpoint takes origin-form requests (\"/v1/...\") for \(listener.endpoint.target)"),
                          head: head, context: context)
        }
        head.uri = listener.upstreamPath(head.uri)
        head.headers.remove(name: "host")
        head.headers.add(name: "Host", value: listener.authority)
        context.fireChannelRead(wrapInboundOut(.head(head)))
    }

    private func refuse(_ r: Refusal, head: HTTPRequestHead, context: ChannelHandlerContext) {
        refused = true
        listener.record(r, method: head.method.rawValue, path: head.uri, context: context, started: .now())
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }
}
