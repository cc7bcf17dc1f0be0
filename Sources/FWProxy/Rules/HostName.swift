import FWPolicy

/// What a host name seen on the wire (CONNECT target, absolute URL, Host header, SNI) is.
///
/// The proxy allows by name only, so everything that a resolver, a URL parser or
/// inet_aton could read as an address counts as an IP literal: dotted quads, IPv6 (bracketed
/// or not, with a zone id), IPv4-mapped IPv6, and the inet_aton forms ("3221225985",
/// "0300.0.2.1", "0xc0.0.2.1", "192.0.513", "127.1"). The rule is the WHATWG URL one: a
/// name whose last label is a number (decimal, octal or 0x-hex) is an IPv4 address, and no
/// top-level domain is numeric.
enum HostName {
    enum Kind: Equatable {
        /// A host name, normalized by `HostPattern.normalize`.
        case name(String)
        /// An IP literal; the address when it decodes to one (a numeric name that overflows
        /// is still a literal, just not a valid one).
        case ipLiteral(IPAddress?)
        /// Neither: characters a host name cannot hold.
        case invalid
    }

    static func classify(_ raw: String) -> Kind {
        var s = Substring(raw)
        if s.hasPrefix("[") || s.hasSuffix("]") {
            // Brackets only ever enclose an IPv6 literal.
            if s.hasPrefix("["), s.hasSuffix("]"), s.count >= 2 { s = s.dropFirst().dropLast() }
            return .ipLiteral(ipv6(s))
        }
        if s.contains(":") {
            // No host name holds a colon; an address that inet_pton reads is a literal.
            if let a = ipv6(s) { return .ipLiteral(a) }
            return .invalid
        }
        if s.hasSuffix(".") { s = s.dropLast() }
        if let last = s.split(separator: ".", omittingEmptySubsequences: false).last,
           isNumericLabel(last) {
            return .ipLiteral(inetAton(s))
        }
        guard let n = HostPattern.normalize(raw) else { return .invalid }
        return .name(n)
    }

    /// IPv6, with a zone id ("fe80::1%eth0", or "%25eth0" as URLs write it) dropped.
    private static func ipv6(_ s: Substring) -> IPAddress? {
        var t = s
        if let pct = t.firstIndex(of: "%") { t = t[..<pct] }
        guard !t.isEmpty, t.contains(":") else { return nil }
        return IPAddress(String(t))
    }

    /// Decimal digits, or "0x" followed by hex digits (possibly none, as inet_aton allows).
    static func isNumericLabel(_ label: Substring) -> Bool {
        let u = Array(label.utf8)
        if u.count >= 2, u[0] == UInt8(ascii: "0"), u[1] | 0x20 == UInt8(ascii: "x") {
            return u.dropFirst(2).allSatisfy(isHexDigit)
        }
        return !u.isEmpty && u.allSatisfy { $0 >= 0x30 && $0 <= 0x39 }
    }

    private static func isHexDigit(_ c: UInt8) -> Bool {
        (c >= 0x30 && c <= 0x39) || (c | 0x20 >= UInt8(ascii: "a") && c | 0x20 <= UInt8(ascii: "f"))
    }

    /// inet_aton: one to four parts, each decimal, octal (leading 0) or hex (0x); the last
    /// part fills the remaining bytes. nil when a part is not a number or overflows.
    static func inetAton(_ s: Substring) -> IPAddress? {
        let parts = s.split(separator: ".", omittingEmptySubsequences: false)
        guard (1...4).contains(parts.count) else { return nil }
        var values: [UInt64] = []
        for p in parts {
            guard let v = number(p) else { return nil }
            values.append(v)
        }
        let lastBits = UInt64(8 * (5 - parts.count))
        var result: UInt64 = 0
        for v in values.dropLast() {
            guard v <= 255 else { return nil }
            result = result << 8 | v
        }
        guard values.last! < (UInt64(1) << lastBits) else { return nil }
        result = result << lastBits | values.last!
        return IPAddress(family: .ipv4, value: UInt128(result))
    }

    private static func number(_ p: Substring) -> UInt64? {
        let u = Array(p.utf8)
        guard !u.isEmpty else { return nil }
        var radix: UInt64 = 10
        var digits = u[...]
        if u.count >= 2, u[0] == UInt8(ascii: "0"), u[1] | 0x20 == UInt8(ascii: "x") {
            radix = 16
            digits = u.dropFirst(2)
        } else if u.count >= 2, u[0] == UInt8(ascii: "0") {
            radix = 8
            digits = u.dropFirst(1)
        }
        var v: UInt64 = 0
        for c in digits {
            let d: UInt64
            switch c {
            case 0x30...0x39: d = UInt64(c - 0x30)
            case 0x61...0x66: d = UInt64(c - 0x61 + 10)
            case 0x41...0x46: d = UInt64(c - 0x41 + 10)
            default: return nil
            }
            guard d < radix else { return nil }
            v = v * radix + d
            guard v <= UInt64(UInt32.max) else { return nil }
        }
        return v
    }

    /// Host or Host-header text without its ":port" ("a.example:443", "[::1]:443").
    /// Returns the host part and the port, if one was given and is a number.
    static func splitPort(_ s: String) -> (host: String, port: UInt16?) {
        if s.hasPrefix("[") {
            guard let close = s.firstIndex(of: "]") else { return (s, nil) }
            let host = String(s[...close])
            let rest = s[s.index(after: close)...]
            if rest.hasPrefix(":"), let p = UInt16(rest.dropFirst()) { return (host, p) }
            return (rest.isEmpty ? host : s, nil)
        }
        let colons = s.utf8.filter { $0 == UInt8(ascii: ":") }.count
        guard colons == 1, let c = s.lastIndex(of: ":") else { return (s, nil) }
        let portText = s[s.index(after: c)...]
        guard !portText.isEmpty, portText.utf8.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }), let p = UInt16(portText) else {
            return (s, nil)
        }
        return (String(s[..<c]), p)
    }
}
