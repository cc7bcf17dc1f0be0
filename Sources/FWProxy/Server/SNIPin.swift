import NIOCore

/// Collects a tunnel's first bytes until the TLS ClientHello is complete and decides
/// whether its SNI is the CONNECT target. Spliced and terminated tunnels both pin the
/// identity this way, before a byte goes upstream.
struct SNIPin {
    enum Outcome {
        case needMoreData
        case pinned
        case refused(Refusal)
    }

    let identity: String
    /// What fixed the identity, for reasons ("CONNECT target").
    let source: String
    /// Everything the client sent so far (the ClientHello is forwarded or fed to TLS later).
    private(set) var buffered: ByteBuffer?

    init(identity: String, source: String = "CONNECT target") {
        self.identity = identity
        self.source = source
    }

    mutating func feed(_ bytes: ByteBuffer) -> Outcome {
        var incoming = bytes
        if buffered == nil { buffered = incoming } else { buffered!.writeBuffer(&incoming) }
        switch ClientHello.parse(Array(buffered!.readableBytesView)) {
        case .needMoreData:
            return .needMoreData
        case .sni(let sni):
            if let r = ProxyRules.checkIdentity(identity, seen: sni, what: "TLS SNI", against: source) { return .refused(r) }
            return .pinned
        case .noSNI:
            return .refused(Refusal(.identityMismatch, "no TLS SNI; the tunnel to \(identity) needs one naming it"))
        case .notTLS, .malformed:
            return .refused(Refusal(.identityMismatch, "the tunnel to \(identity) did not start with a TLS ClientHello"))
        }
    }

    /// Hands over the collected bytes (once).
    mutating func take() -> ByteBuffer? {
        defer { buffered = nil }
        return buffered
    }

    var bufferedCount: Int { buffered?.readableBytes ?? 0 }

    /// The access-log line of a tunnel that ended while its hello was awaited: refused
    /// (`refusal`), or closed by the client (status 200, as its CONNECT was answered), with
    /// the bytes received so far.
    func endLine(client: String, _ arrival: Arrival, port: UInt16, since started: NIODeadline,
                 refusal: Refusal? = nil) -> AccessLog.Entry {
        let bytes = bufferedCount
        let reason = refusal?.reason ?? (bytes == 0
            ? "the client closed the tunnel to \(identity) before sending anything"
            : "the client closed the tunnel to \(identity) before its TLS ClientHello was complete (\(bytes) bytes)")
        return AccessLog.Entry(client: client, arrival, host: identity, port: port, method: "CONNECT", path: nil,
                               status: refusal?.status ?? 200, bytesUp: bytes, since: started, reason: reason)
    }
}
