import FWPolicy
import NIOCore
import NIOHTTP1

/// Plain HTTP through the proxy: absolute-form requests on `proxy.listen` ("GET
/// http://host/path HTTP/1.1"), and plain-HTTP connections the firewall redirected to the
/// transparent port. Decides where each request goes and keeps a RequestGate and an
/// UpstreamForwarder for that route behind itself, over a plain (non-TLS) upstream
/// connection; the gate applies the same per-request rules as on a terminated tunnel
/// (Host = identity, method, path, body limit).
///
/// Routing:
/// - absolute form: each request names its own target, and its Host header must agree (the
///   gate checks). A client that moves on to another host on the same connection, as
///   curl and browsers do with a forward proxy, gets its old upstream connection closed
///   and a new one dialed; every request is still held to the one identity it named.
/// - transparent: the firewall redirected a connection, not a request, so the first
///   request's Host header fixes the identity for the whole connection, and the gate holds
///   every later request to it (421 otherwise).
///
/// Keys are never injected into plain HTTP: a request for an entry with `inject` gets 403,
/// so a real secret never crosses the network in the clear.
///
/// States: ready (with the current route's handlers, or none yet); dialing a new route
/// (the client is not read meanwhile, and parts already decoded wait in order); refused
/// (the answer is written and the connection closes).
final class PlainHTTPFront: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias InboundOut = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    enum Routing {
        /// `proxy.listen`: the request target is "http://host[:port]/path".
        case absoluteForm
        /// Transparent mode: the first Host header, and the port the client dialed.
        case hostHeader(port: UInt16)
    }

    private struct Route: Equatable {
        var host: String
        var port: UInt16
    }

    private struct Stage {
        let route: Route
        let forwarder: UpstreamForwarder
        let handlers: [RemovableChannelHandler & ChannelHandler]
    }

    private enum State {
        case ready(Stage?)
        case dialing(Route, pending: [HTTPServerRequestPart])
        case refused
    }

    private var state = State.ready(nil)
    private let services: ProxyServices
    private let routing: Routing
    private let arrival: Arrival

    /// `arrival`: `.http` on `proxy.listen`, a transparent one with `.hostHeader`.
    init(services: ProxyServices, routing: Routing, arrival: Arrival) {
        self.services = services
        self.routing = routing
        self.arrival = arrival
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        let part = unwrapInboundIn(data)
        switch (part, state) {
        case (_, .refused):
            break
        case (_, .dialing(let route, var pending)):
            pending.append(part)
            state = .dialing(route, pending: pending)
        case (.head(let head), .ready(let stage)):
            if case .hostHeader = routing, stage != nil {
                // The connection's identity is fixed; the gate holds this request to it.
                return context.fireChannelRead(data)
            }
            switch route(of: head) {
            case .failure(let r):
                refuse(r, head: head, host: head.uri, port: 0, context: context)
            case .success(let route) where route == stage?.route:
                context.fireChannelRead(data)
            case .success(let route):
                switchRoute(to: route, head: head, from: stage, context: context)
            }
        case (.body, .ready), (.end, .ready):
            context.fireChannelRead(data)
        }
    }

    /// Where a request head goes, before any policy decision.
    private func route(of head: HTTPRequestHead) -> Result<Route, Refusal> {
        switch routing {
        case .hostHeader(let port):
            let hosts = head.headers["host"]
            guard hosts.count == 1, let host = hosts.first, !host.isEmpty else {
                return .failure(Refusal(.identityMismatch,
                    "\(hosts.isEmpty ? "no" : "\(hosts.count)") Host header\(hosts.count > 1 ? "s" : ""); a redirected plain-HTTP connection is identified by exactly one"))
            }
            return .success(Route(host: HostPattern.normalize(ProxyRules.splitAuthority(host).host) ?? host, port: port))
        case .absoluteForm:
            let uri = head.uri
            let lower = uri.prefix(8).lowercased()
            if lower.hasPrefix("https://") {
                return .failure(Refusal(kind: .hostNotAllowed, status: 400,
                    reason: "an https:// request target goes through CONNECT; this proxy does not fetch https:// URLs for a client"))
            }
            guard lower.hasPrefix("http://") else {
                return .failure(Refusal(kind: .hostNotAllowed, status: 400,
                    reason: "request target \(Refusal.quote(uri)) is not absolute; a proxy takes CONNECT host:port or http://host/path"))
            }
            let rest = uri.dropFirst(7)
            let authority = String(rest.prefix { $0 != "/" && $0 != "?" && $0 != "#" })
            let (host, port) = ProxyRules.splitAuthority(authority)
            guard !host.isEmpty, !authority.contains("@") else {
                return .failure(Refusal(kind: .hostNotAllowed, status: 400,
                    reason: "request target \(Refusal.quote(uri)) has no usable host"))
            }
            if authority.hasSuffix(":") || (authority.contains(":") && port == nil && !host.hasPrefix("[")) {
                return .failure(Refusal(kind: .hostNotAllowed, status: 400,
                    reason: "request target \(Refusal.quote(uri)) has an invalid port"))
            }
            return .success(Route(host: HostPattern.normalize(host) ?? host, port: port ?? 80))
        }
    }

    /// The policy decision for a new route, then a dial; the old route's handlers and
    /// upstream go first (the previous exchange is complete: NIO's pipelining handler in
    /// front passes a head only after the last response ended).
    private func switchRoute(to route: Route, head: HTTPRequestHead, from old: Stage?, context: ChannelHandlerContext) {
        let entry: ProxyEntry
        switch services.rules.entry(host: route.host, port: route.port) {
        case .failure(let r): return refuse(r, head: head, host: route.host, port: route.port, context: context)
        case .success(let e): entry = e
        }
        guard entry.inject.isEmpty else {
            return refuse(Refusal(.hostNotAllowed,
                "\(entry.label) injects keys, which fwctl sends only over TLS; use https:// for \(route.host)"),
                          head: head, host: route.host, port: route.port, context: context)
        }
        if let old {
            old.forwarder.retire()
            for h in old.handlers { context.pipeline.syncOperations.removeHandler(h, promise: nil) }
        }
        state = .dialing(route, pending: [.head(head)])
        context.channel.setOption(.autoRead, value: false).whenFailure { _ in }
        services.dialer.dialHTTP(host: route.host, port: route.port, tls: nil, on: context.eventLoop).whenComplete { [self] result in
            switch result {
            case .success(let upstream):
                guard context.channel.isActive else { return upstream.close(promise: nil) }
                install(route: route, entry: entry, upstream: upstream, context: context)
            case .failure(let error):
                refuse(UpstreamDialer.refusal(for: error, host: route.host, port: route.port), head: head,
                       host: route.host, port: route.port, context: context)
                context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
            }
        }
    }

    private func install(route: Route, entry: ProxyEntry, upstream: Channel, context: ChannelHandlerContext) {
        guard case .dialing(_, let pending) = state else { return upstream.close(promise: nil) }
        let gate = RequestGate(identity: route.host, port: route.port, entry: entry, rules: services.rules,
                               injector: Injector(entry: entry, secrets: services.secrets),
                               maxBodyBytes: services.maxBodyBytes, log: services.log, arrival: arrival)
        let forwarder = UpstreamForwarder(identity: route.host, port: route.port, upstream: upstream, services: services, arrival: arrival)
        do {
            try context.pipeline.syncOperations.addHandlers([gate, forwarder], position: .after(self))
        } catch {
            upstream.close(promise: nil)
            return refuse(.upstreamFailed(host: route.host, port: route.port, detail: "\(error)"),
                          head: nil, host: route.host, port: route.port, context: context)
        }
        state = .ready(Stage(route: route, forwarder: forwarder, handlers: [gate, forwarder]))
        // Replays what arrived while dialing; a later head may need another route, so each
        // part goes through channelRead again.
        for part in pending { channelRead(context: context, data: wrapInboundOut(part)) }
        context.fireChannelReadComplete()
        context.channel.setOption(.autoRead, value: true).whenFailure { _ in }
    }

    private func refuse(_ r: Refusal, head: HTTPRequestHead?, host: String, port: UInt16, context: ChannelHandlerContext) {
        state = .refused
        services.log.record(.init(client: context.client, arrival, host: host, port: port, method: head?.method.rawValue,
                                  path: head.map { PathGlob.pathPart(of: $0.uri) }, status: r.status, since: .now(), reason: r.reason))
        ResponseWriter.refuse(r, context: context, wrap: wrapOutboundOut)
    }
}
