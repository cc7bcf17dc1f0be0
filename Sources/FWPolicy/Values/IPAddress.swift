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
        if text.contains(":") {
            var a6 = in6_addr()
            guard inet_pton(AF_INET6, text, &a6) == 1 else { return nil }
            var v: UInt128 = 0
            withUnsafeBytes(of: &a6) { raw in
                for byte in raw { v = (v << 8) | UInt128(byte) }
            }
            self.init(family: .ipv6, value: v)
        } else {
            var a4 = in_addr()
            guard inet_pton(AF_INET, text, &a4) == 1 else { return nil }
            self.init(family: .ipv4, value: UInt128(UInt32(bigEndian: a4.s_addr)))
        }
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
