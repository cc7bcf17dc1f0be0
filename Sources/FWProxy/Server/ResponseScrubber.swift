import NIOCore
import NIOHTTP1

/// Replaces every real secret in a response with its placeholder before the client sees
/// it: header values one-shot, the body with a streaming `Scrubber` per response (an
/// occurrence split across chunks is still caught; at most the longest secret minus one
/// byte is held back, so events still stream).
///
/// Replacing changes the body's length, so a Content-Length from the upstream cannot be
/// kept: the response goes out chunked instead. Responses that have no body (to HEAD,
/// 1xx, 204, 304) keep their framing headers, which describe a body never sent.
///
/// Inbound, it only notes each request's method (HEAD or not), in order: NIO's pipelining
/// handler in front lets one request through at a time, so the queue holds at most a few.
final class ResponseScrubber: ChannelDuplexHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundIn = HTTPServerResponsePart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case awaitingHead
        case body(Scrubber)
        /// A response that carries no body: passed through as is.
        case bodiless
        /// A compressed body despite `Accept-Encoding: identity`: it cannot be checked for
        /// secrets, so the client gets a 502 and the upstream's body is dropped.
        case unreadable
    }

    static let unreadableMessage = "fwctl: the upstream sent a compressed body, which cannot be checked for secrets\n"


    private var state = State.awaitingHead
    private var pendingMethods: [HTTPMethod] = []
    private let secrets: SecretStore

    init(secrets: SecretStore) { self.secrets = secrets }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        if case .head(let head) = unwrapInboundIn(data) { pendingMethods.append(head.method) }
        context.fireChannelRead(data)
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        switch (unwrapOutboundIn(data), state) {
        case (.head(var head), .awaitingHead):
            let informational = head.status.code < 200
            let method = informational ? nil : (pendingMethods.isEmpty ? nil : pendingMethods.removeFirst())
            let scrubber = secrets.makeScrubber()
            if !scrubber.isEmpty { head.headers = scrubbed(head.headers, scrubber) }
            if informational {
                // The final head follows; the state stays.
            } else if method == .HEAD || head.status == .noContent || head.status == .notModified {
                state = .bodiless
            } else if scrubber.isEmpty {
                state = .body(scrubber)   // no secrets loaded: nothing changes length
            } else if let encoding = head.headers["content-encoding"].first(where: { $0.lowercased() != "identity" }) {
                state = .unreadable
                var refusal = HTTPResponseHead(version: head.version, status: .badGateway)
                refusal.headers.add(name: "Content-Type", value: "text/plain; charset=utf-8")
                refusal.headers.add(name: "Content-Length", value: "\(Self.unreadableMessage.utf8.count)")
                refusal.headers.add(name: "X-Fwctl-Refusal", value: "upstream content-encoding \(Refusal.quote(encoding)) cannot be scrubbed")
                context.write(wrapOutboundOut(.head(refusal)), promise: nil)
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(string: Self.unreadableMessage)))),
                              promise: promise)
                return
            } else {
                head.headers.remove(name: "content-length")
                head.headers.remove(name: "transfer-encoding")
                head.headers.add(name: "Transfer-Encoding", value: "chunked")
                state = .body(scrubber)
            }
            context.write(wrapOutboundOut(.head(head)), promise: promise)
        case (.body(let part), .body(var scrubber)):
            guard !scrubber.isEmpty, case .byteBuffer(let buffer) = part else {
                return context.write(data, promise: promise)
            }
            let changed = buffer.withUnsafeReadableBytes { scrubber.feedIfChanged($0) }
            state = .body(scrubber)
            // No secret in it and nothing held back: the upstream's buffer goes on as it is.
            guard let out = changed else { return context.write(data, promise: promise) }
            // An empty chunk would end a chunked body early; write nothing until there is
            // something (the promise still completes).
            if out.isEmpty {
                promise?.succeed(())
                return
            }
            context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: out)))), promise: promise)
        case (.end(let trailers), .body(var scrubber)):
            state = .awaitingHead
            let tail = scrubber.finish()
            if !tail.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(context.channel.allocator.buffer(bytes: tail)))), promise: nil)
            }
            context.write(wrapOutboundOut(.end(trailers.map { scrubbed($0, scrubber) })), promise: promise)
        case (.end, .bodiless):
            state = .awaitingHead
            context.write(data, promise: promise)
        case (.body, .unreadable):
            promise?.succeed(())
        case (.end, .unreadable):
            state = .awaitingHead
            context.write(wrapOutboundOut(.end(nil)), promise: promise)
        default:
            context.write(data, promise: promise)
        }
    }

    /// The headers with every secret replaced, in names and values; the same headers (no
    /// copy) when none could hold one.
    private func scrubbed(_ headers: HTTPHeaders, _ scrubber: Scrubber) -> HTTPHeaders {
        guard headers.contains(where: { scrubber.mayMatch($0.value.utf8) || scrubber.mayMatch($0.name.utf8) }) else { return headers }
        return HTTPHeaders(headers.map { (scrubber.scrubbed($0.name), scrubber.scrubbed($0.value)) })
    }
}
