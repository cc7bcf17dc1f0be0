import FWPolicy
import NIOCore
import NIOHTTP1

/// What the gate lets through to the forwarder: only requests that passed every check on
/// their head, with the keys already injected. A separate type, so nothing unchecked can
/// reach the upstream by accident.
enum GatedRequestPart {
    case head(HTTPRequestHead, keepAlive: Bool)
    case body(ByteBuffer)
    case end(HTTPHeaders?)
    /// The request was refused after its head went upstream (a chunked body over the limit):
    /// the upstream exchange is abandoned.
    case abort
}

/// The per-request checks of a terminated connection, all on the head and before any body
/// byte goes upstream: the Host header names the CONNECT target (421), method and path
/// rules (403), the body limit by Content-Length (413), and injection (403 when the
/// placeholder is wrong or missing). A chunked body is counted as it streams; going over
/// the limit then aborts the exchange with a 413.
///
/// Every request on a kept-alive connection passes here (NIO's pipelining handler in front
/// hands them over one at a time).
final class RequestGate: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = GatedRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private enum State {
        case awaitingHead
        /// The head went on; body bytes are counted against the limit.
        case forwarding(method: String, path: String, bodyBytes: Int)
        /// A refusal was written; the rest of the request is dropped until the connection closes.
        case refused
    }

    private var state = State.awaitingHead
    private let identity: String
    private let port: UInt16
    private let entry: ProxyEntry
    private let rules: ProxyRules
    private let injector: Injector
    private let maxBodyBytes: Int
    private let log: AccessLog
    /// The access log's mode and what fixed the identity (named in reasons).
    private let arrival: Arrival
    private var requestStarted = NIODeadline.now()

    /// Hop-by-hop headers of the client's hop: the proxy runs its own connection upstream.
    static let hopByHop: Set<String> = ["connection", "keep-alive", "proxy-connection", "proxy-authorization", "te", "upgrade"]

    init(identity: String, port: UInt16, entry: ProxyEntry, rules: ProxyRules, injector: Injector,
         maxBodyBytes: Int, log: AccessLog, arrival: Arrival = .mitm) {
        self.identity = identity
        self.port = port
        self.entry = entry
        self.rules = rules
        self.injector = injector
        self.maxBodyBytes = maxBodyBytes
        self.log = log
        self.arrival = arrival
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch (unwrapInboundIn(data), state) {
        case (.head(let head), .awaitingHead):
            requestStarted = .now()
            switch check(head) {
            case .failure(let r):
                refuse(r, method: head.method.rawValue, path: head.uri, context: context)
            case .success(let forwarded):
                state = .forwarding(method: head.method.rawValue, path: forwarded.uri, bodyBytes: 0)
                context.fireChannelRead(wrapInboundOut(.head(forwarded, keepAlive: head.isKeepAlive)))
            }
        case (.body(let buffer), .forwarding(let method, let path, let bytes)):
            let total = bytes + buffer.readableBytes
            guard total <= maxBodyBytes else {
                context.fireChannelRead(wrapInboundOut(.abort))
                return refuse(.bodyTooLarge(limit: maxBodyBytes), method: method, path: path, context: context)
            }
            state = .forwarding(method: method, path: path, bodyBytes: total)
            context.fireChannelRead(wrapInboundOut(.body(buffer)))
        case (.end(let trailers), .forwarding):
            state = .awaitingHead
            context.fireChannelRead(wrapInboundOut(.end(trailers)))
        case (_, .refused):
            break
        case (.head, .forwarding), (.body, .awaitingHead), (.end, .awaitingHead):
            // The decoder never produces these; treat them as a broken client.
            context.close(promise: nil)
        }
    }

    /// The head as it goes upstream, or why not. Order matters only for which reason a
    /// client sees first; the identity comes first since it decides what the rest means.
    private func check(_ head: HTTPRequestHead) -> Result<HTTPRequestHead, Refusal> {
        let hosts = head.headers["host"]
        if hosts.count > 1 {
            return .failure(Refusal(.identityMismatch, "\(hosts.count) Host headers; one naming \(identity) is required"))
        }
        if let r = ProxyRules.checkIdentity(identity, seen: hosts.first, what: "Host header", against: arrival.identitySource, port: port) {
            return .failure(r)
        }
        // Inside a connection already pinned to one host, a request names a path: CONNECT or
        // an authority-form target would ask the upstream to act as a proxy for us.
        if head.method == .CONNECT {
            return .failure(Refusal(.methodNotAllowed, "CONNECT inside a connection to \(identity) is not allowed"))
        }
        var uri = head.uri
        // An absolute-form target carries an authority of its own: it must name the identity
        // too, and the upstream gets the origin form.
        if !uri.hasPrefix("/"), let scheme = uri.range(of: "://") {
            let rest = uri[scheme.upperBound...]
            let end = rest.firstIndex { $0 == "/" || $0 == "?" || $0 == "#" } ?? rest.endIndex
            if let r = ProxyRules.checkIdentity(identity, seen: String(rest[..<end]), what: "request target authority",
                                                against: arrival.identitySource, port: port) {
                return .failure(r)
            }
            uri = end == rest.endIndex ? "/" : (rest[end] == "/" ? String(rest[end...]) : "/" + rest[end...])
        }
        guard uri.hasPrefix("/") || (uri == "*" && head.method == .OPTIONS) else {
            return .failure(Refusal(kind: .pathNotAllowed, status: 400,
                                    reason: "request target \(Refusal.quote(uri)) is not a path (\"/...\")"))
        }
        if let r = rules.checkRequest(method: head.method.rawValue, path: uri, entry: entry) { return .failure(r) }
        if let length = head.headers["content-length"].first, let n = Int(length), n > maxBodyBytes {
            return .failure(.bodyTooLarge(limit: maxBodyBytes))
        }
        let pairs = head.headers.filter { !Self.hopByHop.contains($0.name.lowercased()) }.map { ($0.name, $0.value) }
        switch injector.rewrite(pairs) {
        case .failure(let r):
            return .failure(r)
        case .success(let rewritten):
            var out = HTTPRequestHead(version: .http1_1, method: head.method, uri: uri, headers: HTTPHeaders(rewritten))
            out.headers.replaceOrAdd(name: "Host", value: hosts.first ?? identity)
            // A gzipped body would carry a secret past the scrubber (an error message that
            // quotes the key, compressed): ask for the body as it is.
            if injector.scrubsResponses { out.headers.replaceOrAdd(name: "Accept-Encoding", value: "identity") }
            return .success(out)
        }
    }

    private func refuse(_ r: Refusal, method: String, path: String, context: ChannelHandlerContext) {
        state = .refused
        log.record(.init(client: context.client, arrival, host: identity, port: port, method: method,
                         path: PathGlob.pathPart(of: path), status: r.status, since: requestStarted, reason: r.reason))
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }
}
