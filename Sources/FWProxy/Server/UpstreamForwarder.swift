import FWPolicy
import NIOCore
import NIOHTTP1
import NIOSSL
import NIOTLS   // TLSUserEvent; comes with NIOSSL

/// The upstream end of a terminated connection, on the client channel: writes each gated
/// request to the upstream connection (TLS + HTTP/1.1 client codecs, dialed at CONNECT
/// time) and writes the upstream's response back, part by part as it arrives, so a
/// server-sent event reaches the client when the upstream sends it. One upstream
/// connection per client connection, kept alive as long as both sides keep it.
///
/// Backpressure both ways: a side stops reading while the other cannot take more.
final class UpstreamForwarder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = GatedRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private struct Exchange {
        var method: String
        var path: String
        var keepAlive: Bool
        var started: NIODeadline
        var bytesUp = 0
        var status = 0
        var bytesDown = 0
    }

    private enum State {
        case idle
        /// The request is going or gone upstream; no response head yet.
        case awaitingResponse(Exchange)
        /// The response head went to the client; body parts follow.
        case streaming(Exchange)
        case closed
    }

    private var state = State.idle
    private var context: ChannelHandlerContext?
    private let identity: String
    private let port: UInt16
    private let upstream: Channel
    private let services: ProxyServices
    /// The access log's mode and, for a redirected connection, the original destination.
    private let arrival: Arrival
    /// The upstream's last error, for the 502 reason (NIO/NIOSSL texts carry no secret).
    fileprivate var upstreamError: Error?
    /// Requests seen on this connection. A connection that ends with none still gets an
    /// access-log line, so every upstream connection the proxy made is accounted for.
    private var requests = 0
    /// The client side's error (a failed TLS handshake, say), for that line's reason.
    private var clientError: Error?
    private var client = "-"
    private let created = NIODeadline.now()

    init(identity: String, port: UInt16, upstream: Channel, services: ProxyServices, arrival: Arrival = .mitm) {
        self.identity = identity
        self.port = port
        self.upstream = upstream
        self.services = services
        self.arrival = arrival
    }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
        client = context.client
        // Same event loop (the dialer connects on the client's loop), so the pipeline can
        // be touched synchronously.
        if let relay = try? upstream.pipeline.syncOperations.handler(type: UpstreamRelay.self) {
            relay.forwarder = self
        }
        if !upstream.isActive { upstreamClosed() }
    }

    func handlerRemoved(context: ChannelHandlerContext) { self.context = nil }

    /// Lets go of the upstream before this handler leaves the pipeline (a plain-HTTP proxy
    /// connection moving on to another host): its closing must not close the client.
    func retire() {
        state = .closed
        if let relay = try? upstream.pipeline.syncOperations.handler(type: UpstreamRelay.self) { relay.forwarder = nil }
        upstream.close(promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head, let keepAlive), .idle):
            requests += 1
            guard upstream.isActive else {
                return fail(head: head, Refusal.upstreamFailed(host: identity, port: port, detail: upstreamErrorText), context: context)
            }
            state = .awaitingResponse(Exchange(method: head.method.rawValue, path: PathGlob.pathPart(of: head.uri),
                                               keepAlive: keepAlive, started: .now()))
            upstream.write(HTTPClientRequestPart.head(head), promise: nil)
        case (.body(let buffer), .awaitingResponse(var x)):
            x.bytesUp += buffer.readableBytes
            state = .awaitingResponse(x)
            upstream.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case (.body(let buffer), .streaming(var x)):
            // An upstream may answer before the body is done (an early error); keep sending.
            x.bytesUp += buffer.readableBytes
            state = .streaming(x)
            upstream.write(HTTPClientRequestPart.body(.byteBuffer(buffer)), promise: nil)
        case (.end(let trailers), .awaitingResponse), (.end(let trailers), .streaming):
            upstream.writeAndFlush(HTTPClientRequestPart.end(trailers), promise: nil)
        case (.abort, _):
            // The gate refused mid-body. The upstream saw a partial request: drop it. A
            // response already under way cannot be followed by a refusal: close.
            if case .streaming = state { context.close(promise: nil) }
            state = .closed
            upstream.close(promise: nil)
        case (_, .closed):
            break
        case (.head, _), (.body, .idle), (.end, .idle):
            context.close(promise: nil)
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        upstream.flush()
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        switch state {
        case .streaming(let x):
            record(x, reason: "client closed before the response ended")
        case .idle where requests == 0:
            let why = clientError.map { "the connection to the client failed before a request: \(Self.briefly($0))" }
                ?? "the client closed the connection before sending a request"
            services.log.record(.init(client: client, arrival, host: identity, port: port, method: "CONNECT", path: nil,
                                      status: 200, since: created, reason: why))
        default:
            break
        }
        state = .closed
        upstream.close(promise: nil)
        context.fireChannelInactive()
    }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        upstream.setOption(.autoRead, value: context.channel.isWritable).whenFailure { _ in }
        context.fireChannelWritabilityChanged()
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        // A TLS or HTTP error from the client: nothing sensible can follow on this connection.
        if clientError == nil { clientError = error }
        context.close(promise: nil)
    }

    // MARK: From the upstream (called by UpstreamRelay, on the same event loop)

    fileprivate func upstreamRead(_ part: HTTPClientResponsePart) {
        guard let context else { return }
        switch (part, state) {
        case (.head(var head), .awaitingResponse(var x)):
            // Informational answers (100 Continue) are dropped by the decoder; this is final.
            for name in ["connection", "keep-alive", "proxy-connection"] { head.headers.remove(name: name) }
            if !x.keepAlive { head.headers.add(name: "Connection", value: "close") }
            x.status = Int(head.status.code)
            state = .streaming(x)
            context.write(wrapOutboundOut(.head(head)), promise: nil)
        case (.body(let buffer), .streaming(var x)):
            x.bytesDown += buffer.readableBytes
            state = .streaming(x)
            context.write(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
        case (.end(let trailers), .streaming(let x)):
            record(x, reason: nil)
            state = .idle
            let done = context.writeAndFlush(wrapOutboundOut(.end(trailers)))
            if !x.keepAlive || !upstream.isActive {
                state = .closed
                done.whenComplete { _ in context.close(promise: nil) }
            }
        default:
            // A response with no request, or parts out of order: the upstream is broken.
            upstream.close(promise: nil)
        }
    }

    fileprivate func upstreamReadComplete() { context?.flush() }

    fileprivate func upstreamWritabilityChanged(_ writable: Bool) {
        context?.channel.setOption(.autoRead, value: writable).whenFailure { _ in }
    }

    fileprivate func upstreamClosed() {
        guard let context else { return }
        switch state {
        case .idle:
            // Nothing in flight: the client's next request would have nowhere to go.
            state = .closed
            if requests == 0 {
                services.log.record(.init(client: client, arrival, host: identity, port: port, method: "CONNECT", path: nil,
                                          status: 200, since: created,
                                          reason: "the upstream closed the connection (\(upstreamErrorText)) before the client sent a request"))
            }
            context.close(promise: nil)
        case .awaitingResponse(let x):
            state = .closed
            let r = Refusal.upstreamFailed(host: identity, port: port, detail: upstreamErrorText)
            record(x, status: r.status, reason: r.reason)
            ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
        case .streaming(let x):
            // A cut response cannot be repaired; the client sees the connection end.
            state = .closed
            record(x, reason: "upstream closed before the response ended")
            context.close(promise: nil)
        case .closed:
            break
        }
    }

    /// An error for the access log: BoringSSL's reason codes rather than its full text,
    /// which names source files of the build.
    static func briefly(_ error: Error) -> String {
        let text = "\(error)"
        let reasons = text.components(separatedBy: "OPENSSL_internal:").dropFirst()
            .map { $0.prefix(while: { $0.isUppercase || $0.isNumber || $0 == "_" }) }.filter { !$0.isEmpty }
        return reasons.isEmpty ? text : "TLS error " + reasons.joined(separator: ", ")
    }

    private var upstreamErrorText: String {
        upstreamError.map { "\($0)" } ?? "the connection closed"
    }

    private func fail(head: HTTPRequestHead, _ r: Refusal, context: ChannelHandlerContext) {
        state = .closed
        record(Exchange(method: head.method.rawValue, path: PathGlob.pathPart(of: head.uri), keepAlive: false, started: .now()),
               status: r.status, reason: r.reason)
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }

    private func record(_ x: Exchange, status: Int? = nil, reason: String?) {
        services.log.record(.init(client: client, arrival, host: identity, port: port, method: x.method, path: x.path,
                                  status: status ?? x.status, bytesUp: x.bytesUp, bytesDown: x.bytesDown, since: x.started,
                                  reason: reason))
    }
}

/// The last handler on the upstream channel: reports the TLS handshake (the CONNECT is
/// answered only after it, so an upstream with a bad certificate gets a readable 502), then
/// hands every response part to the client side's forwarder.
final class UpstreamRelay: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart

    private enum State { case handshaking, ready, closed }

    private var state = State.handshaking
    let handshake: EventLoopPromise<Void>
    fileprivate weak var forwarder: UpstreamForwarder?

    init(eventLoop: EventLoop) { handshake = eventLoop.makePromise() }

    /// TLS client (none when `tls` is nil: a plain-HTTP upstream, ready at once), HTTP/1.1
    /// client codecs and a relay, for the dialer's `configure`.
    static func install(on channel: Channel, context tls: NIOSSLContext?, hostname: String) -> EventLoopFuture<Void> {
        channel.eventLoop.makeCompletedFuture {
            let sync = channel.pipeline.syncOperations
            let relay = UpstreamRelay(eventLoop: channel.eventLoop)
            if let tls {
                try sync.addHandler(NIOSSLClientHandler(context: tls, serverHostname: hostname))
            } else {
                relay.state = .ready
                relay.handshake.succeed(())
            }
            try sync.addHandler(HTTPRequestEncoder())
            try sync.addHandler(ByteToMessageHandler(HTTPResponseDecoder(leftOverBytesStrategy: .dropBytes)))
            try sync.addHandler(relay)
        }
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if case TLSUserEvent.handshakeCompleted = event, state == .handshaking {
            state = .ready
            handshake.succeed(())
        }
        context.fireUserInboundEventTriggered(event)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        forwarder?.upstreamRead(unwrapInboundIn(data))
    }

    func channelReadComplete(context: ChannelHandlerContext) { forwarder?.upstreamReadComplete() }

    func channelWritabilityChanged(context: ChannelHandlerContext) {
        forwarder?.upstreamWritabilityChanged(context.channel.isWritable)
    }

    func errorCaught(context: ChannelHandlerContext, error: Error) {
        if state == .handshaking {
            state = .closed
            handshake.fail(error)
        }
        forwarder?.upstreamError = error
        context.close(promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        if state == .handshaking { handshake.fail(ChannelError.eof) }
        state = .closed
        forwarder?.upstreamClosed()
        context.fireChannelInactive()
    }
}
