#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// An address family: the one place that knows the two widths.
public enum AddressFamily: String, Sendable, Hashable, Codable, CaseIterable, Comparable {
    case ipv4, ipv6

    /// Bits in an address of this family.
    public var bitWidth: Int { self == .ipv4 ? 32 : 128 }

    public static func < (a: AddressFamily, b: AddressFamily) -> Bool { a == .ipv4 && b == .ipv6 }
}

/// An IPv4 or IPv6 address. Parsing and printing live here and nowhere else:
/// the compiler, renderers and netlink never parse an address again.
///
/// The value is kept right-aligned in a `UInt128` so prefix arithmetic is the same
/// code for both families.
public struct IPAddress: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let family: AddressFamily
    public let value: UInt128

    public init(family: AddressFamily, value: UInt128) {
        self.family = family
        self.value = family == .ipv4 ? (value & 0xffff_ffff) : value
    }

    /// Parses the textual forms inet_pton accepts: dotted-quad IPv4 (decimal only, no
    /// octal or shortened forms) and RFC 4291 IPv6. Zone ids and brackets are refused.
    public init?(_ text: String) {
        if let v4 = Self.parseIPv4(text.utf8) {
            self.init(family: .ipv4, value: UInt128(v4))
            return
        }
        if text.utf8.contains(UInt8(ascii: ":")) {
            var a6 = in6_addr()
            guard inet_pton(AF_INET6, text, &a6) == 1 else { return nil }
            var v: UInt128 = 0
            withUnsafeBytes(of: &a6) { raw in
                for byte in raw { v = (v << 8) | UInt128(byte) }
            }
            self.init(family: .ipv6, value: v)
        } else {
            return nil
        }
    }

    /// Dotted-quad IPv4 as inet_pton reads it: four decimal parts 0-255, no leading zeros.
    /// Done by hand because policies can hold 100,000 addresses and inet_pton needs a C
    /// string for each.
    static func parseIPv4<C: Collection>(_ bytes: C) -> UInt32? where C.Element == UInt8 {
        var value: UInt32 = 0
        var part: UInt32 = 0
        var digits = 0
        var parts = 0
        for b in bytes {
            if b == UInt8(ascii: ".") {
                guard digits > 0, parts < 3 else { return nil }
                value = value << 8 | part
                parts += 1
                part = 0
                digits = 0
            } else if b >= UInt8(ascii: "0") && b <= UInt8(ascii: "9") {
                if digits > 0 && part == 0 { return nil } // a leading zero
                part = part * 10 + UInt32(b - UInt8(ascii: "0"))
                digits += 1
                guard part <= 255, digits <= 3 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, parts == 3 else { return nil }
        return value << 8 | part
    }

    /// Network-order bytes: 4 for IPv4, 16 for IPv6.
    public var bytes: [UInt8] {
        let n = family.bitWidth / 8
        return (0..<n).map { i in UInt8(truncatingIfNeeded: value >> UInt128(8 * (n - 1 - i))) }
    }

    public init?(bytes: [UInt8]) {
        guard bytes.count == 4 || bytes.count == 16 else { return nil }
        var v: UInt128 = 0
        for b in bytes { v = (v << 8) | UInt128(b) }
        self.init(family: bytes.count == 4 ? .ipv4 : .ipv6, value: v)
    }

    /// RFC 5952 text (inet_ntop).
    public var description: String {
        var bytes = self.bytes
        var buf = [CChar](repeating: 0, count: Int(INET6_ADDRSTRLEN) + 1)
        let af = family == .ipv4 ? AF_INET : AF_INET6
        _ = bytes.withUnsafeMutableBytes { raw in
            inet_ntop(af, raw.baseAddress, &buf, socklen_t(buf.count))
        }
        return String(cString: buf)
    }

    public static func < (a: IPAddress, b: IPAddress) -> Bool {
        a.family != b.family ? a.family < b.family : a.value < b.value
    }

    public var isLoopback: Bool { CIDR.loopback(family).contains(self) }
    public var isLinkLocal: Bool { CIDR.linkLocal(family).contains(self) }
}

extension IPAddress: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        guard let a = IPAddress(s) else {
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath,
                                                    debugDescription: "not an IP address: \(s)"))
        }
        self = a
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}
