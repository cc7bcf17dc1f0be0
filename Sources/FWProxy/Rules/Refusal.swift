/// Why the proxy said no: an HTTP status and one readable line.
///
/// `reason` goes into the response body and the `X-Fwctl-Reason` header, so it is always a
/// single line of printable ASCII (values from the client are quoted and escaped by
/// `Refusal.quote`), and it never carries a secret.
public struct Refusal: Error, Sendable, Equatable, CustomStringConvertible {
    public enum Kind: String, Sendable, CaseIterable {
        case hostNotAllowed, ipLiteral, portNotAllowed, identityMismatch, methodNotAllowed,
             pathNotAllowed, placeholderMismatch, bodyTooLarge, dangerousAddress, upstreamFailed

        /// The status the contract gives each kind: 421 for identity, 413 for size,
        /// 502 for the upstream, 403 for everything else.
        public var status: Int {
            switch self {
            case .identityMismatch: return 421
            case .bodyTooLarge: return 413
            case .upstreamFailed: return 502
            default: return 403
            }
        }
    }

    public var kind: Kind
    public var status: Int
    public var reason: String

    public init(kind: Kind, status: Int, reason: String) {
        self.kind = kind
        self.status = status
        self.reason = Refusal.oneLine(reason)
    }

    /// The status follows from the kind.
    public init(_ kind: Kind, _ reason: String) {
        self.init(kind: kind, status: kind.status, reason: reason)
    }

    /// "403 hostNotAllowed: host "x" is not allowed ...", for logs.
    public var description: String { "\(status) \(kind.rawValue): \(reason)" }

    // MARK: Refusals the server makes itself

    /// 413 for a body over `proxy.max_body_bytes`.
    public static func bodyTooLarge(limit: Int) -> Refusal {
        Refusal(.bodyTooLarge, "request body is larger than max_body_bytes (\(limit) bytes)")
    }

    /// 502 when the upstream cannot be reached or fails. `detail` must not hold a secret
    /// (an error text from NIO or NIOSSL is fine).
    public static func upstreamFailed(host: String, port: UInt16, detail: String) -> Refusal {
        Refusal(.upstreamFailed, "upstream \(quote(host)):\(port) failed: \(detail)")
    }

    // MARK: Text hygiene

    /// A value from the wire, quoted for a reason line: printable ASCII only (everything
    /// else as \xNN), at most `limit` characters, so a client cannot inject a header line
    /// or flood the log.
    public static func quote(_ value: String, limit: Int = 120) -> String {
        var out = "\""
        var count = 0
        for b in value.utf8 {
            if count >= limit { out += "..."; break }
            switch b {
            case UInt8(ascii: "\""): out += "\\\""
            case UInt8(ascii: "\\"): out += "\\\\"
            case 0x20...0x7e: out.unicodeScalars.append(Unicode.Scalar(b))
            default: out += "\\x" + String(b, radix: 16, uppercase: true).leftPadded(to: 2)
            }
            count += 1
        }
        return out + "\""
    }

    /// Control characters (CR, LF among them) become spaces: the reason is a header value.
    static func oneLine(_ s: String) -> String {
        guard s.utf8.contains(where: { $0 < 0x20 || $0 == 0x7f }) else { return s }
        return String(s.unicodeScalars.map { $0.value < 0x20 || $0.value == 0x7f ? " " : Character($0) })
    }
}

extension String {
    func leftPadded(to n: Int) -> String { count >= n ? self : String(repeating: "0", count: n - count) + self }
}
