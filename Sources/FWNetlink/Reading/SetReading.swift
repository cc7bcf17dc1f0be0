import FWPolicy
import FWRuleset

/// An anonymous set's contents, kept to resolve the lookups of the rule that owns it.
struct AnonymousSet {
    var keyType: UInt32
    var keyLen: Int
    /// Closed ranges of key values (big-endian keys as integers); nil when the elements
    /// could not be read (wrong key lengths), so no lookup into it is lifted.
    var ranges: [(lo: UInt128, hi: UInt128)]?
}

/// Set elements back into values: the inverse of `ElementEncoding`.
enum SetReading {
    enum Named {
        case set(NamedSet)
        /// A set fwctl never makes (another key type, a map, other flags): a note says so.
        case foreign(String)
    }

    static func named(_ s: TableDump.Set) -> Named {
        let family: AddressFamily
        switch (s.keyType, s.keyLen) {
        case (DataType.ipv4Addr.rawValue, 4): family = .ipv4
        case (DataType.ipv6Addr.rawValue, 16): family = .ipv6
        default:
            return .foreign("set \(s.name) (key type \(s.keyType), \(s.keyLen) bytes, flags 0x\(String(s.flags, radix: 16))) is not an fwctl set and is not shown")
        }
        let known = SetFlag.interval | SetFlag.timeout
        guard s.flags & ~known == 0 else {
            return .foreign("set \(s.name) has flags 0x\(String(s.flags, radix: 16)), which fwctl never sets; it is not shown")
        }
        let interval = s.flags & SetFlag.interval != 0
        guard let ranges = ranges(s.elements, keyLen: Int(s.keyLen), interval: interval) else {
            return .foreign("set \(s.name): the kernel returned elements of the wrong length; it is not shown")
        }
        var flags: [NamedSet.Flag] = []
        if interval { flags.append(.interval) }
        if s.flags & SetFlag.timeout != 0 { flags.append(.timeout) }
        let elements = interval ? cidrs(family, ranges) : addresses(family, ranges)
        return .set(NamedSet(name: s.name, keyType: .init(family), flags: flags, elements: elements))
    }

    static func anonymous(_ s: TableDump.Set) -> AnonymousSet {
        AnonymousSet(keyType: s.keyType, keyLen: Int(s.keyLen),
                     ranges: ranges(s.elements, keyLen: Int(s.keyLen), interval: s.flags & SetFlag.interval != 0))
    }

    /// The canonical element list, exactly as the compiler makes it: the covered addresses
    /// as prefixes, merged (CIDRSet.merge sorts and joins, whatever the input order).
    static func cidrs(_ family: AddressFamily, _ ranges: [(lo: UInt128, hi: UInt128)]) -> [CIDR] {
        CIDRSet.merge(ranges.flatMap { CIDRSet.prefixes(family, $0.lo, $0.hi) })
    }

    /// The canonical element list of a set without the interval flag, as the compiler makes
    /// it: each address its own element, sorted and unique, not merged (192.0.2.1 and
    /// 192.0.2.2 stay two). Elements with a timeout or an expiry are elements like any other.
    static func addresses(_ family: AddressFamily, _ ranges: [(lo: UInt128, hi: UInt128)]) -> [CIDR] {
        Set(ranges.flatMap { CIDRSet.prefixes(family, $0.lo, $0.hi) }).sorted()
    }

    /// The closed ranges the elements cover. Interval sets hold starts and ends (an end's
    /// key is one past the interval); the kernel matches a key by the nearest element at
    /// or below it, a start winning over an end at the same key. So: sort (ends first on a
    /// tie), open at a start, close at an end; an end with nothing open (nft's leading end
    /// marker at zero) is ignored, and an interval still open at the last element runs to
    /// the top. The kernel may return the elements in any order, often descending.
    static func ranges(_ elements: [TableDump.Element], keyLen: Int, interval: Bool) -> [(lo: UInt128, hi: UInt128)]? {
        guard keyLen >= 1, keyLen <= 16 else { return nil }
        guard elements.allSatisfy({ $0.key.count == keyLen && ($0.keyEnd?.count ?? keyLen) == keyLen }) else { return nil }
        let top = UInt128.max >> UInt128(128 - 8 * keyLen)

        // Concatenated-range sets carry both ends in one element.
        if elements.contains(where: { $0.keyEnd != nil }) {
            return elements.filter { !$0.isIntervalEnd }.map { e in
                let lo = value(e.key), hi = e.keyEnd.map(value) ?? lo
                return (min(lo, hi), max(lo, hi))
            }.sorted { $0.lo < $1.lo }
        }
        guard interval else { return elements.map { (value($0.key), value($0.key)) }.sorted { $0.lo < $1.lo } }

        let points = elements.map { (key: value($0.key), end: $0.isIntervalEnd) }
            .sorted { $0.key != $1.key ? $0.key < $1.key : ($0.end && !$1.end) }
        var out: [(lo: UInt128, hi: UInt128)] = []
        var open: UInt128?
        for p in points {
            if p.end {
                // Ends sort before starts on a tie, so an end after the open start is
                // strictly above it: key - 1 cannot underflow.
                if let lo = open, p.key > lo { out.append((lo, p.key - 1)); open = nil }
            } else if open == nil {
                open = p.key
            }
        }
        if let lo = open { out.append((lo, top)) }
        return out
    }

    /// A big-endian key as an integer (keys are at most 16 bytes).
    static func value(_ bytes: [UInt8]) -> UInt128 {
        bytes.reduce(UInt128(0)) { $0 << 8 | UInt128($1) }
    }
}
