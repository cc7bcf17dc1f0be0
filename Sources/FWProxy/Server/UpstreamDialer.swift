import FWPolicy
import FWResolve
import NIOCore
import NIOPosix

/// Opens the connection to an upstream host. The proxy resolves names itself, with the
/// policy's resolvers, and checks every address with the dial-time guard before it
/// connects: a name that suddenly points at loopback or the metadata service (DNS
/// rebinding) is refused, whatever the client believed the name meant.
final class UpstreamDialer: @unchecked Sendable {
    private let resolver: FWResolve.Resolver
    private let guardrail: DialGuard
    private let threadPool: NIOThreadPool

    init(resolver: FWResolve.Resolver, guardrail: DialGuard, threadPool: NIOThreadPool) {
        self.resolver = resolver
        self.guardrail = guardrail
        self.threadPool = threadPool
    }

    enum Failure: Error { case refused(Refusal) }

    /// Resolves `host` (off the event loop: the resolver blocks), picks the first address the
    /// guard allows, and connects; `configure` sets up the new channel's pipeline.
    func dial(host: String, port: UInt16, on eventLoop: EventLoop,
              configure: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let resolved = threadPool.runIfActive(eventLoop: eventLoop) { [resolver] in
            resolver.resolve([host]).result(for: host)
        }
        return resolved.flatMap { [guardrail] (result: NameResolution?) -> EventLoopFuture<Channel> in
            guard let r = result, r.isResolved, !r.addresses.isEmpty else {
                let why = result.map { $0.detail ?? $0.status.rawValue } ?? "no answer"
                return eventLoop.makeFailedFuture(Failure.refused(Refusal(
                    kind: .upstreamFailed, status: 502, reason: "\(host) did not resolve (\(why))")))
            }
            var lastRefusal: Refusal?
            for address in r.addresses {
                if let refusal = guardrail.check(address, host: host) { lastRefusal = refusal; continue }
                do {
                    let target = try SocketAddress(ipAddress: address.description, port: Int(port))
                    return ClientBootstrap(group: eventLoop)
                        .channelOption(.socketOption(.tcp_nodelay), value: 1)
                        .connectTimeout(.seconds(10))
                        .channelInitializer(configure)
                        .connect(to: target)
                } catch {
                    continue
                }
            }
            return eventLoop.makeFailedFuture(Failure.refused(lastRefusal ?? Refusal(
                kind: .upstreamFailed, status: 502, reason: "\(host) has no usable address")))
        }
    }
}
