/// A host name as the policy names it: exact ("api.example.com") or a wildcard over strict
/// subdomains ("*.example.com" matches "a.example.com" and "a.b.example.com", never
/// "example.com"). Case-folded, trailing dot dropped.
///
/// This is the one matcher: the proxy's decision and the DNS filter both call `matches`.
public struct HostPattern: Sendable, Hashable, Comparable, CustomStringConvertible, Codable {
    public enum Kind: String, Sendable, Hashable, Codable { case exact, wildcard }

    public let kind: Kind
    /// For `.exact` the name; for `.wildcard` the suffix after "*." (e.g. "example.com").
    public let name: String

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case empty
        case ipLiteral(String)
        case tooLong(String)
        case badLabel(String, label: String)
        case badWildcard(String)
        case wildcardTooBroad(String)

        public var description: String {
            switch self {
            case .empty: return "host name is empty"
            case .ipLiteral(let s): return "\"\(s)\" is an IP address, not a host name (use cidr = [\"\(s)\"] instead)"
            case .tooLong(let s): return "\"\(s)\" is too long (a host name has at most 253 characters)"
            case .badLabel(let s, let l):
                return "\"\(s)\" is not a valid host name (label \"\(l)\": allowed are letters, digits and inner hyphens, 1-63 characters)"
            case .badWildcard(let s):
                return "\"\(s)\" is not a valid wildcard (allowed: \"*.\" followed by a host name, e.g. \"*.example.com\")"
            case .wildcardTooBroad(let s):
                return "\"\(s)\" is too broad (a wildcard needs at least two labels after \"*.\", e.g. \"*.example.com\")"
            }
        }
    }

    public static func parse(_ text: String) -> Result<HostPattern, ParseError> {
        var s = text.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        if s.isEmpty { return .failure(.empty) }
        if IPAddress(s) != nil || IPAddress(s.trimmingCharacters(in: "[]")) != nil { return .failure(.ipLiteral(text)) }
        var kind = Kind.exact
        if s.hasPrefix("*.") {
            kind = .wildcard
            s.removeFirst(2)
        }
        if s.contains("*") { return .failure(.badWildcard(text)) }
        if s.count > 253 { return .failure(.tooLong(text)) }
        let labels = s.split(separator: ".", omittingEmptySubsequences: false)
        for label in labels where !isValidLabel(label) {
            return .failure(.badLabel(text, label: String(label)))
        }
        if kind == .wildcard && labels.count < 2 { return .failure(.wildcardTooBroad(text)) }
        return .success(HostPattern(kind: kind, name: s))
    }

    private init(kind: Kind, name: String) { self.kind = kind; self.name = name }

    static func isValidLabel<S: StringProtocol>(_ label: S) -> Bool {
        guard (1...63).contains(label.utf8.count), label.first != "-", label.last != "-" else { return false }
        return label.utf8.allSatisfy { c in
            (c >= 0x61 && c <= 0x7a) || (c >= 0x30 && c <= 0x39) || c == 0x2d
        }
    }

    /// Normalizes a name seen on the wire (SNI, Host, DNS question): lower case, no
    /// trailing dot. Returns nil for something that is not a host name at all.
    public static func normalize(_ host: String) -> String? {
        var s = host.lowercased()
        if s.hasSuffix(".") { s.removeLast() }
        guard !s.isEmpty, s.count <= 253,
              s.split(separator: ".", omittingEmptySubsequences: false).allSatisfy(isValidLabel) else { return nil }
        return s
    }

    public func matches(_ host: String) -> Bool {
        guard let h = HostPattern.normalize(host) else { return false }
        switch kind {
        case .exact: return h == name
        case .wildcard: return h.hasSuffix("." + name)
        }
    }

    public var isWildcard: Bool { kind == .wildcard }
    public var description: String { kind == .wildcard ? "*." + name : name }

    public static func < (a: HostPattern, b: HostPattern) -> Bool { a.description < b.description }

    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        switch HostPattern.parse(s) {
        case .success(let h): self = h
        case .failure(let e):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

private extension String {
    func trimmingCharacters(in chars: String) -> String {
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s.removeFirst() }
        while let l = s.last, chars.contains(l) { s.removeLast() }
        return String(s)
    }
}
