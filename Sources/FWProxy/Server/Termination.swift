import FWPolicy
import Foundation
import NIOCore
import NIOSSL

/// What terminating connections share: the CA that mints the certificates the sandbox
/// sees, one server TLS context per host, the upstream TLS context, the secrets and the
/// body limit. Made once at server start, and only when some entry terminates, so a
/// splice-only policy needs no CA on disk.
final class Termination: @unchecked Sendable {
    let authority: CertificateAuthority
    let secrets: SecretStore
    let maxBodyBytes: Int
    /// System trust store plus `proxy.upstream_ca`, hostname verified (NIOSSLClientHandler
    /// is given the identity as serverHostname).
    let upstreamContext: NIOSSLContext

    private let lock = NSLock()
    /// Building an NIOSSLContext costs far more than a handshake's lookup, so one per host
    /// is kept; the leaf it holds is compared on each use, and the context rebuilt when
    /// the CA's cache has renewed the leaf.
    private var serverContexts: [String: (leaf: CertificateAuthority.Leaf, context: NIOSSLContext)] = [:]

    /// How long a closing TLS connection waits for the peer's close_notify (NIOSSL's default
    /// is 5 s). NIOSSL keeps the connection's handler, with its buffers and TLS state, until
    /// this timer fires, even when the TCP connection is gone before it; under churn (clients
    /// that open and drop tunnels by the hundred a second) those dead connections outnumbered
    /// the open ones and most of the proxy's memory was theirs.
    static let shutdownTimeout = TimeAmount.milliseconds(500)

    init(authority: CertificateAuthority, secrets: SecretStore, settings: ProxySettings) throws {
        self.authority = authority
        self.secrets = secrets
        self.maxBodyBytes = settings.maxBodyBytes
        upstreamContext = try Self.upstreamTLS(settings)
    }

    /// The upstream side's TLS: system trust store plus `proxy.upstream_ca`. The upstream hop
    /// is HTTP/1.1 only: the forwarder speaks nothing else.
    static func upstreamTLS(_ settings: ProxySettings) throws -> NIOSSLContext {
        var client = TLSConfiguration.makeClientConfiguration()
        client.trustRoots = .default
        if let extra = settings.upstreamCA { client.additionalTrustRoots = [.file(extra)] }
        client.applicationProtocols = ["http/1.1"]
        client.shutdownTimeout = shutdownTimeout
        return try NIOSSLContext(configuration: client)
    }

    /// The server context presenting a leaf for `host` (the normalized CONNECT target).
    func serverContext(for host: String) throws -> NIOSSLContext {
        let leaf = try authority.leaf(for: host)
        lock.lock()
        if let cached = serverContexts[host], cached.leaf.certificate == leaf.certificate {
            lock.unlock()
            return cached.context
        }
        lock.unlock()
        var config = TLSConfiguration.makeServerConfiguration(
            certificateChain: leaf.sslCertificateChain.map { .certificate($0) }, privateKey: .privateKey(leaf.sslPrivateKey))
        // Only HTTP/1.1 is understood on the decrypted side; a client offering h2 falls back.
        config.applicationProtocols = ["http/1.1"]
        config.shutdownTimeout = Self.shutdownTimeout
        let context = try NIOSSLContext(configuration: config)
        lock.lock()
        serverContexts[host] = (leaf, context)
        lock.unlock()
        return context
    }
}
