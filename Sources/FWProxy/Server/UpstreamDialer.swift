import Foundation
import FWPolicy
import FWResolve
import NIOCore
import NIOPosix
import NIOSSL

/// Opens the connection to an upstream host. The proxy resolves names itself, with the
/// policy's resolvers, and checks every address with the dial-time guard before it
/// connects: a name that suddenly points at loopback or the metadata service (DNS
/// rebinding) is refused, whatever the client believed the name meant.
final class UpstreamDialer: @unchecked Sendable {
    private let resolver: FWResolve.Resolver
    private let guardrail: DialGuard
    private let threadPool: NIOThreadPool

    /// Answers kept for their TTL (at most `maxCacheSeconds`), so a client that opens many
    /// tunnels to one host does not cost a DNS round trip each. Only successful answers are
    /// kept; every address is still checked by the guard on every dial.
    private let cacheLock = NSLock()
    private var cache: [String: (result: NameResolution, expires: NIODeadline)] = [:]
    static let maxCacheSeconds: UInt32 = 60

    init(resolver: FWResolve.Resolver, guardrail: DialGuard, threadPool: NIOThreadPool) {
        self.resolver = resolver
        self.guardrail = guardrail
        self.threadPool = threadPool
    }

    enum Failure: Error { case refused(Refusal) }

    private func cached(_ host: String) -> NameResolution? {
        cacheLock.lock(); defer { cacheLock.unlock() }
        guard let entry = cache[host] else { return nil }
        if entry.expires > .now() { return entry.result }
        cache[host] = nil
        return nil
    }

    private func remember(_ host: String, _ r: NameResolution) {
        let seconds = min(r.ttl ?? 0, Self.maxCacheSeconds)
        guard seconds > 0 else { return }
        cacheLock.lock(); defer { cacheLock.unlock() }
        if cache.count > 10_000 { cache.removeAll() }   // a bound, not a policy: names are few
        cache[host] = (r, .now() + .seconds(Int64(seconds)))
    }

    /// What the client is told when a dial failed: the guard's or resolver's refusal, or a 502.
    static func refusal(for error: Error, host: String, port: UInt16) -> Refusal {
        if case Failure.refused(let r) = error { return r }
        return .upstreamFailed(host: host, port: port, detail: "\(error)")
    }

    /// A connection for a spliced tunnel: it reads nothing until the tunnel is glued, so no
    /// upstream byte can reach a client whose SNI has not been checked yet.
    func dialForSplice(host: String, port: UInt16, on eventLoop: EventLoop) -> EventLoopFuture<Channel> {
        dial(host: host, port: port, on: eventLoop) { channel in channel.setOption(.autoRead, value: false) }
    }

    /// A connection for HTTP exchanges: TLS with the hostname verified against `host` (none
    /// when `tls` is nil), HTTP/1.1 client codecs and an UpstreamRelay. Succeeds once the
    /// TLS handshake is done, so a bad certificate is a readable 502 before anything is
    /// promised to the client.
    func dialHTTP(host: String, port: UInt16, tls: NIOSSLContext?, on eventLoop: EventLoop) -> EventLoopFuture<Channel> {
        dial(host: host, port: port, on: eventLoop) { channel in
            UpstreamRelay.install(on: channel, context: tls, hostname: host)
        }.flatMap { upstream -> EventLoopFuture<Channel> in
            guard let relay = try? upstream.pipeline.syncOperations.handler(type: UpstreamRelay.self) else {
                return upstream.eventLoop.makeFailedFuture(ChannelError.ioOnClosedChannel)
            }
            return relay.handshake.futureResult.map { upstream }.flatMapErrorThrowing { error in
                upstream.close(promise: nil)
                throw error
            }
        }
    }

    /// Resolves `host` (off the event loop: the resolver blocks), picks the first address the
    /// guard allows, and connects; `configure` sets up the new channel's pipeline.
    func dial(host: String, port: UInt16, on eventLoop: EventLoop,
              configure: @escaping @Sendable (Channel) -> EventLoopFuture<Void>) -> EventLoopFuture<Channel> {
        let resolved: EventLoopFuture<NameResolution?>
        if let cached = cached(host) {
            resolved = eventLoop.makeSucceededFuture(cached)
        } else {
            resolved = threadPool.runIfActive(eventLoop: eventLoop) { [resolver, self] in
                let r = resolver.resolve([host]).result(for: host)
                if let r, r.isResolved, !r.addresses.isEmpty { remember(host, r) }
                return r
            }
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
                        .channelOption(.tcpOption(.tcp_nodelay), value: 1)
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
