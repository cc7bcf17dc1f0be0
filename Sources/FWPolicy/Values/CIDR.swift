/// A network prefix such as 192.0.2.0/24 or 2001:db8::/32, with no host bits set.
public struct CIDR: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let address: IPAddress
    public let prefixLength: Int

    /// Fails (returns nil) when host bits are set; use `parse` for a reason.
    public init?(address: IPAddress, prefixLength: Int) {
        guard prefixLength >= 0, prefixLength <= address.family.bitWidth else { return nil }
        guard address.value & ~CIDR.mask(address.family, prefixLength) == 0 else { return nil }
        self.address = address
        self.prefixLength = prefixLength
    }

    /// A single host: /32 or /128.
    public init(host: IPAddress) {
        self.address = host
        self.prefixLength = host.family.bitWidth
    }

    public enum ParseError: Error, Equatable, CustomStringConvertible {
        case notAnAddress(String)
        case badPrefix(String)
        case prefixTooLong(Int, max: Int)
        case hostBitsSet(String, meant: CIDR)

        public var description: String {
            switch self {
            case .notAnAddress(let s): return "\"\(s)\" is not a valid CIDR (not an IPv4 or IPv6 address)"
            case .badPrefix(let s): return "\"\(s)\" is not a valid CIDR (the prefix length must be a number)"
            case .prefixTooLong(let p, let max):
                return "is not a valid CIDR (prefix \(p) > \(max))"
            case .hostBitsSet(let s, let meant):
                return "\"\(s)\" has host bits set; did you mean \"\(meant)\"?"
            }
        }
    }

    /// Parses "ADDR" (a single host) or "ADDR/LEN". Host bits set is an error that names
    /// the network the writer probably meant.
    public static func parse(_ text: String) -> Result<CIDR, ParseError> {
        if !text.utf8.contains(UInt8(ascii: "/")) {
            // The common case in large policies: a single address.
            guard let addr = IPAddress(text) else { return .failure(.notAnAddress(text)) }
            return .success(CIDR(host: addr))
        }
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let addr = IPAddress(String(parts[0])) else { return .failure(.notAnAddress(text)) }
        var len = addr.family.bitWidth
        if parts.count == 2 {
            guard !parts[1].isEmpty, parts[1].allSatisfy({ $0.isASCII && $0.isNumber }),
                  parts[1].count <= 3, let n = Int(parts[1]) else {
                return .failure(.badPrefix(text))
            }
            guard n <= addr.family.bitWidth else {
                return .failure(.prefixTooLong(n, max: addr.family.bitWidth))
            }
            len = n
        }
        let masked = IPAddress(family: addr.family, value: addr.value & mask(addr.family, len))
        let cidr = CIDR(address: masked, prefixLength: len)!
        if masked != addr { return .failure(.hostBitsSet(text, meant: cidr)) }
        return .success(cidr)
    }

    public var family: AddressFamily { address.family }
    public var isHost: Bool { prefixLength == family.bitWidth }

    /// First and last address covered.
    public var first: UInt128 { address.value }
    public var last: UInt128 { address.value | ~CIDR.mask(family, prefixLength) & CIDR.allOnes(family) }

    /// The mask as an address: 255.255.255.0 for a /24.
    public var netmask: IPAddress { IPAddress(family: family, value: CIDR.mask(family, prefixLength)) }

    public func contains(_ a: IPAddress) -> Bool {
        a.family == family && a.value & CIDR.mask(family, prefixLength) == address.value
    }

    public func contains(_ other: CIDR) -> Bool {
        other.family == family && other.prefixLength >= prefixLength && contains(other.address)
    }

    /// "192.0.2.1" for a host, "192.0.2.0/24" otherwise, the way nft prints set elements.
    public var description: String { isHost ? address.description : "\(address)/\(prefixLength)" }

    /// Always with the length: "192.0.2.1/32".
    public var longDescription: String { "\(address)/\(prefixLength)" }

    public static func < (a: CIDR, b: CIDR) -> Bool {
        a.address != b.address ? a.address < b.address : a.prefixLength < b.prefixLength
    }

    static func allOnes(_ f: AddressFamily) -> UInt128 { f == .ipv4 ? 0xffff_ffff : UInt128.max }

    static func mask(_ f: AddressFamily, _ len: Int) -> UInt128 {
        if len == 0 { return 0 }
        let width = f.bitWidth
        return (allOnes(f) >> UInt128(width - len)) << UInt128(width - len) & allOnes(f)
    }

    // Well-known ranges that policy and compiler refer to by name.
    public static func loopback(_ f: AddressFamily) -> CIDR {
        f == .ipv4 ? literal("127.0.0.0/8") : literal("::1/128")
    }
    public static func linkLocal(_ f: AddressFamily) -> CIDR {
        f == .ipv4 ? literal("169.254.0.0/16") : literal("fe80::/10")
    }

    /// For prefixes written in fwctl's own code, which are known to be valid.
    static func literal(_ s: String) -> CIDR {
        guard case .success(let c) = parse(s) else { preconditionFailure("bad CIDR literal \(s)") }
        return c
    }
}


extension CIDR: Codable {
    public init(from decoder: Decoder) throws {
        let s = try decoder.singleValueContainer().decode(String.self)
        switch CIDR.parse(s) {
        case .success(let c): self = c
        case .failure(let e):
            throw DecodingError.dataCorrupted(.init(codingPath: decoder.codingPath, debugDescription: e.description))
        }
    }
    public func encode(to encoder: Encoder) throws {
        var c = encoder.singleValueContainer()
        try c.encode(description)
    }
}

/// Merging of prefixes: overlapping and adjacent prefixes become the smallest list of
/// prefixes that covers exactly the same addresses. Output is sorted (IPv4 first), so the
/// same input set always gives the same list, whatever its order.
public enum CIDRSet {
    public static func merge(_ cidrs: [CIDR]) -> [CIDR] {
        var out: [CIDR] = []
        for family in AddressFamily.allCases {
            let ranges = cidrs.filter { $0.family == family }
                .map { ($0.first, $0.last) }
                .sorted { $0.0 < $1.0 }
            var merged: [(UInt128, UInt128)] = []
            for r in ranges {
                if let lastR = merged.last, lastR.1 == CIDR.allOnes(family) || r.0 <= lastR.1 + 1 {
                    merged[merged.count - 1].1 = max(lastR.1, r.1)
                } else {
                    merged.append(r)
                }
            }
            for (lo, hi) in merged { out += prefixes(family, lo, hi) }
        }
        return out
    }

    /// The minimal list of prefixes covering lo...hi exactly.
    public static func prefixes(_ family: AddressFamily, _ lo: UInt128, _ hi: UInt128) -> [CIDR] {
        var out: [CIDR] = []
        var start = lo
        let width = family.bitWidth
        while true {
            // Largest block aligned at `start` that does not pass `hi`.
            var len = width - min(start == 0 ? width : start.trailingZeroBitCount, width)
            if len == 0 {
                if hi == CIDR.allOnes(family) { return [CIDR(address: IPAddress(family: family, value: 0), prefixLength: 0)!] }
                len = 1
            }
            while len < width {
                let size = UInt128(1) << UInt128(width - len) // len < width so this fits
                let end = start &+ (size &- 1)
                if end >= start && end <= hi { break }
                len += 1
            }
            let cidr = CIDR(address: IPAddress(family: family, value: start), prefixLength: len)!
            out.append(cidr)
            let end = cidr.last
            if end >= hi { break }
            start = end + 1
        }
        return out
    }
}
