import FWPolicy
import FWRuleset

/// nft's datatype numbers, stored as a set's key type so `nft list` prints elements by
/// name (addresses, services, ICMP types) instead of as hex.
enum DataType: UInt32 {
    case ipv4Addr = 7
    case ipv6Addr = 8
    case inetService = 13
    case icmpType = 14
    case icmpv6Type = 29
}

/// Set flags (NFT_SET_*).
enum SetFlag {
    static let anonymous: UInt32 = 0x1
    static let constant: UInt32 = 0x2
    static let interval: UInt32 = 0x4
    static let timeout: UInt32 = 0x10
}

/// nft's `meta nfproto` values and IP protocol numbers, as fwctl compares them.
enum Proto {
    static let nfprotoIPv4: UInt8 = 2
    static let nfprotoIPv6: UInt8 = 10
    static let icmp: UInt8 = 1
    static let icmpv6: UInt8 = 58
    static func number(_ p: TransportProtocol) -> UInt8 { p == .tcp ? 6 : 17 }
    static func nfproto(_ f: AddressFamily) -> UInt8 { f == .ipv4 ? nfprotoIPv4 : nfprotoIPv6 }
}

/// Offsets of the header fields fwctl matches on.
enum Field {
    static func address(_ f: AddressFamily, _ d: Match.Direction) -> (offset: UInt32, len: UInt32) {
        switch (f, d) {
        case (.ipv4, .source): return (12, 4)
        case (.ipv4, .destination): return (16, 4)
        case (.ipv6, .source): return (8, 16)
        case (.ipv6, .destination): return (24, 16)
        }
    }
    static func port(_ d: Match.Direction) -> UInt32 { d == .source ? 0 : 2 }
}

/// A set as the kernel holds it: named or anonymous, with elements already encoded.
struct KernelSet {
    var name: String
    var id: UInt32
    var keyType: DataType
    var keyLen: UInt32
    var flags: UInt32
    var elements: [KernelElement]
    /// NFTA_SET_DESC size: nft gives it for anonymous sets.
    var descSize: UInt32?

    var isAnonymous: Bool { flags & SetFlag.anonymous != 0 }
}

struct KernelElement: Equatable {
    var key: [UInt8]
    /// NFT_SET_ELEM_INTERVAL_END: the first key past an interval.
    var intervalEnd: Bool
}

enum ElementEncoding {
    /// Intervals the way nft sends them: a leading end marker at zero (unless the first
    /// interval starts there), then each interval's start, and its end + 1 unless it runs to
    /// the top of the key space.
    static func intervals(_ ranges: [(lo: [UInt8], hi: [UInt8])]) -> [KernelElement] {
        guard let first = ranges.first else { return [] }
        var out: [KernelElement] = []
        if first.lo.contains(where: { $0 != 0 }) {
            out.append(KernelElement(key: [UInt8](repeating: 0, count: first.lo.count), intervalEnd: true))
        }
        for r in ranges {
            out.append(KernelElement(key: r.lo, intervalEnd: false))
            if let next = increment(r.hi) { out.append(KernelElement(key: next, intervalEnd: true)) }
        }
        return out
    }

    /// Big-endian + 1; nil when it overflows (the interval reaches the top).
    static func increment(_ bytes: [UInt8]) -> [UInt8]? {
        var b = bytes
        for i in b.indices.reversed() {
            if b[i] == 0xff { b[i] = 0 } else { b[i] += 1; return b }
        }
        return nil
    }

    static func prefixes(_ cidrs: [CIDR]) -> [KernelElement] {
        intervals(cidrs.map { c in
            (IPAddress(family: c.family, value: c.first).bytes, IPAddress(family: c.family, value: c.last).bytes)
        })
    }

    /// The elements of a set without the interval flag: one key per address. Such a set
    /// cannot hold a wider prefix; the compiler never puts one there.
    static func addresses(_ cidrs: [CIDR]) -> [KernelElement] {
        cidrs.map { c in
            precondition(c.isHost, "\(c) is not a single address: a set without the interval flag cannot hold it")
            return KernelElement(key: c.address.bytes, intervalEnd: false)
        }
    }

    static func bigEndian16(_ v: UInt16) -> [UInt8] { [UInt8(v >> 8), UInt8(v & 0xff)] }
}
