import NIOCore

/// How a client connection reached the proxy: the access log's `mode`, what fixed the
/// connection's identity (named in refusal reasons), and, for a connection the firewall
/// redirected, where the client was really going (logged, never used for a decision).
struct Arrival: Sendable {
    /// splice, mitm, endpoint, http or transparent.
    let mode: String
    /// "CONNECT target", "request target", "TLS SNI", ...
    let identitySource: String
    /// SO_ORIGINAL_DST of a redirected connection, "203.0.113.5:443" or "[2001:db8::5]:443".
    var originalDestination: String? = nil

    /// A spliced CONNECT tunnel.
    static let splice = Arrival(mode: "splice", identitySource: "CONNECT target")
    /// A terminated CONNECT tunnel.
    static let mitm = Arrival(mode: "mitm", identitySource: "CONNECT target")
    /// A `[[proxy.endpoint]]` connection (base-URL mode).
    static let endpoint = Arrival(mode: "endpoint", identitySource: "endpoint target")
    /// Absolute-form plain HTTP on `proxy.listen`.
    static let http = Arrival(mode: "http", identitySource: "request target")

    /// A redirected connection, identified by its TLS SNI or its first Host header.
    static func transparent(identitySource: String, originalDestination: String?) -> Arrival {
        Arrival(mode: "transparent", identitySource: identitySource, originalDestination: originalDestination)
    }
}

extension AccessLog.Entry {
    /// The one way handlers build a log line: mode and original destination from the
    /// arrival, the duration from `started`.
    init(client: String, _ arrival: Arrival, host: String, port: UInt16, method: String?, path: String?, status: Int,
         bytesUp: Int = 0, bytesDown: Int = 0, since started: NIODeadline, reason: String?) {
        self.init(client: client, mode: arrival.mode, host: host, port: Int(port), method: method, path: path, status: status,
                  bytesUp: bytesUp, bytesDown: bytesDown, durationMs: Int((NIODeadline.now() - started).nanoseconds / 1_000_000),
                  reason: reason, original: arrival.originalDestination)
    }
}

extension ChannelHandlerContext {
    /// The client's address for the log, as the channel cached it at accept
    /// (`context.remoteAddress` asks the kernel again, one getpeername per call).
    var client: String { channel.remoteAddress?.description ?? "-" }
}
