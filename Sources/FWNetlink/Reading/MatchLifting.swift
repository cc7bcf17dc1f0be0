import FWPolicy
import FWRuleset

/// The match sequences: one recognizer per IR match, each the inverse of its case in
/// RuleLowering, plus nft's equivalent encodings. Each checks every expression it takes
/// (register, operation, lengths) and returns nil rather than guess.
extension RuleScanner {
    func match(at i: Int, _ ctx: inout Context) -> (Match, Int)? {
        if let r = icmp(at: i, ctx) { ctx.family = r.family; ctx.l4 = r.l4; return (r.match, r.count) }
        if let r = address(at: i, ctx) { ctx.family = r.family; return (r.match, r.count) }
        if let r = port(at: i, ctx) { ctx.l4 = r.l4; return (r.match, r.count) }
        if let m = ctState(at: i) { return (m, 3) }
        if let m = interface(at: i) { return (m, 2) }
        if let uid = meta32(.skuid, at: i) { return (.socketUser(.uid(uid)), 2) }
        if let mark = meta32(.mark, at: i) { return (.mark(mark), 2) }
        if let mark = socketMark(at: i) { return (.socketMark(mark), 2) }
        if let p = l4proto(at: i), let t = Self.transport(p) { ctx.l4 = p; return (.l4proto(t), 2) }
        return nil
    }

    /// `meta load skuid|mark => reg 1` + `cmp eq reg 1 VALUE` (host byte order, all 32 bits).
    func meta32(_ key: Meta.Key, at i: Int) -> UInt32? {
        guard case .meta(let m)? = at(i), m.key == key.rawValue, let v = cmpEq(at: i + 1, len: 4) else { return nil }
        return v.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    /// `socket load mark => reg 1` + `cmp eq reg 1 VALUE` (host byte order).
    func socketMark(at i: Int) -> UInt32? {
        guard case .socket(let s)? = at(i), s.key == Socket.Key.mark.rawValue, let v = cmpEq(at: i + 1, len: 4) else { return nil }
        return v.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
    }

    // MARK: dependencies

    /// `meta load nfproto => reg 1` + `cmp eq reg 1 2|10`.
    func nfproto(at i: Int) -> AddressFamily? {
        guard case .meta(let m)? = at(i), m.key == Meta.Key.nfproto.rawValue,
              let v = cmpEq(at: i + 1, len: 1) else { return nil }
        switch v[0] {
        case Proto.nfprotoIPv4: return .ipv4
        case Proto.nfprotoIPv6: return .ipv6
        default: return nil
        }
    }

    /// `meta load l4proto => reg 1` + `cmp eq reg 1 N`.
    func l4proto(at i: Int) -> UInt8? {
        guard case .meta(let m)? = at(i), m.key == Meta.Key.l4proto.rawValue,
              let v = cmpEq(at: i + 1, len: 1) else { return nil }
        return v[0]
    }

    func cmp(at i: Int, _ op: CmpOp, len: Int) -> [UInt8]? {
        guard case .cmp(let c)? = at(i), c.op == op.rawValue, c.data.count == len else { return nil }
        return c.data
    }
    func cmpEq(at i: Int, len: Int) -> [UInt8]? { cmp(at: i, .eq, len: len) }

    enum CmpOp: UInt32 { case eq = 0, neq = 1, lt = 2, lte = 3, gt = 4, gte = 5 }

    static func transport(_ p: UInt8) -> TransportProtocol? {
        p == Proto.number(.tcp) ? .tcp : p == Proto.number(.udp) ? .udp : nil
    }

    // MARK: matches

    /// [nfproto] + payload network (address field, or its first bytes) + cmp | bitwise + cmp | lookup @named.
    func address(at i: Int, _ ctx: Context) -> (match: Match, count: Int, family: AddressFamily)? {
        var j = i
        let family: AddressFamily
        if let f = nfproto(at: j) { family = f; j += 2 } else if let f = ctx.family { family = f } else { return nil }
        guard case .payload(let p)? = at(j), p.base == Payload.Base.network.rawValue else { return nil }
        let width = family.bitWidth / 8
        let dir: Match.Direction
        if p.offset == Field.address(family, .source).offset { dir = .source }
        else if p.offset == Field.address(family, .destination).offset { dir = .destination }
        else { return nil }
        guard p.len >= 1, p.len <= UInt32(width) else { return nil }
        let len = Int(p.len)
        j += 1

        if len == width, case .lookup(let l)? = at(j), anonymous[l.set] == nil {
            return (.address(dir, family, .set(l.set)), j + 1 - i, family)
        }
        var prefix = 8 * len
        if case .bitwise(let b)? = at(j), b.mask.count == len, b.xor.allSatisfy({ $0 == 0 }) {
            guard let ones = Self.leadingOnes(b.mask) else { return nil }
            prefix = ones
            j += 1
        }
        guard let value = cmpEq(at: j, len: len),
              let address = IPAddress(bytes: value + [UInt8](repeating: 0, count: width - len)),
              let cidr = CIDR(address: address, prefixLength: prefix) else { return nil }
        return (.address(dir, family, .prefix(cidr)), j + 1 - i, family)
    }

    /// A contiguous netmask's length; nil when the mask has holes.
    static func leadingOnes(_ mask: [UInt8]) -> Int? {
        var bits: [Bool] = []
        for byte in mask {
            for shift in 0..<8 { bits.append(byte & (UInt8(0x80) >> UInt8(shift)) != 0) }
        }
        let n = bits.firstIndex(of: false) ?? bits.count
        return bits[n...].contains(true) ? nil : n
    }

    /// [l4proto tcp|udp] + payload transport +0|+2 len 2 + cmp eq | cmp gte + cmp lte | range | lookup { ports }.
    func port(at i: Int, _ ctx: Context) -> (match: Match, count: Int, l4: UInt8)? {
        var j = i
        let l4: UInt8
        if let p = l4proto(at: j) { l4 = p; j += 2 } else if let p = ctx.l4 { l4 = p } else { return nil }
        guard let proto = Self.transport(l4),
              case .payload(let p)? = at(j), p.base == Payload.Base.transport.rawValue, p.len == 2,
              p.offset == Field.port(.source) || p.offset == Field.port(.destination) else { return nil }
        let dir: Match.Direction = p.offset == Field.port(.source) ? .source : .destination
        j += 1

        var ranges: [PortRange]
        if let v = cmpEq(at: j, len: 2) {
            ranges = [PortRange(Int(SetReading.value(v)), Int(SetReading.value(v)))].compactMap { $0 }
            j += 1
        } else if let lo = cmp(at: j, .gte, len: 2), let hi = cmp(at: j + 1, .lte, len: 2) {
            ranges = [PortRange(Int(SetReading.value(lo)), Int(SetReading.value(hi)))].compactMap { $0 }
            j += 2
        } else if case .range(let r)? = at(j), r.op == 0, r.from.count == 2, r.to.count == 2 {
            ranges = [PortRange(Int(SetReading.value(r.from)), Int(SetReading.value(r.to)))].compactMap { $0 }
            j += 1
        } else if let set = lookup(at: j, keyType: .inetService, keyLen: 2) {
            ranges = set.compactMap { PortRange(Int($0.lo), Int($0.hi)) }
            guard ranges.count == set.count else { return nil }
            ranges = PortRange.merge(ranges)
            j += 1
        } else {
            return nil
        }
        guard !ranges.isEmpty else { return nil } // port 0, or an inverted range
        return (.port(proto, dir, .ranges(ranges)), j - i, l4)
    }

    /// [nfproto] + [l4proto icmp|icmpv6] + payload transport +0 len 1 + cmp eq | lookup { types }.
    func icmp(at i: Int, _ ctx: Context) -> (match: Match, count: Int, family: AddressFamily, l4: UInt8)? {
        var j = i
        let family: AddressFamily
        if let f = nfproto(at: j) { family = f; j += 2 } else if let f = ctx.family { family = f } else { return nil }
        let l4: UInt8
        if let p = l4proto(at: j) { l4 = p; j += 2 } else if let p = ctx.l4 { l4 = p } else { return nil }
        let v6 = family == .ipv6
        guard l4 == (v6 ? Proto.icmpv6 : Proto.icmp),
              case .payload(let p)? = at(j), p.base == Payload.Base.transport.rawValue, p.offset == 0, p.len == 1 else { return nil }
        j += 1
        var numbers: [UInt8]
        if let v = cmpEq(at: j, len: 1) {
            numbers = v
        } else if let set = lookup(at: j, keyType: v6 ? .icmpv6Type : .icmpType, keyLen: 1) {
            numbers = set.flatMap { r in (r.lo...r.hi).map { UInt8(truncatingIfNeeded: $0) } }
        } else {
            return nil
        }
        j += 1
        numbers = Array(Swift.Set(numbers)).sorted()
        if v6 {
            let types = numbers.compactMap { n in ICMPv6Type.allCases.first { $0.number == n } }
            guard types.count == numbers.count, !types.isEmpty else { return nil }
            return (.icmpv6Type(types), j - i, family, l4)
        }
        let types = numbers.compactMap { n in ICMPType.allCases.first { $0.number == n } }
        guard types.count == numbers.count, !types.isEmpty else { return nil }
        return (.icmpType(types), j - i, family, l4)
    }

    /// The ranges of an anonymous set of the given key type (1-byte or 2-byte keys, so a
    /// range expands to at most 65,536 values).
    func lookup(at i: Int, keyType: DataType, keyLen: Int) -> [(lo: UInt128, hi: UInt128)]? {
        guard case .lookup(let l)? = at(i), let set = anonymous[l.set], set.keyType == keyType.rawValue,
              set.keyLen == keyLen, let ranges = set.ranges, !ranges.isEmpty else { return nil }
        return ranges
    }

    /// `ct load state => reg 1` + `bitwise reg 1 = (reg 1 & BITS) ^ 0` + `cmp neq reg 1 0`.
    func ctState(at i: Int) -> Match? {
        guard case .ct(let c)? = at(i), c.key == Ct.stateKey,
              case .bitwise(let b)? = at(i + 1), b.mask.count == 4, b.xor == [0, 0, 0, 0],
              cmp(at: i + 2, .neq, len: 4) == [0, 0, 0, 0] else { return nil }
        // The state bits are in host byte order (RuleLowering.hostOrder32).
        let bits = b.mask.withUnsafeBytes { $0.loadUnaligned(as: UInt32.self) }
        let states = CtState.allCases.filter { bits & RuleLowering.ctBit($0) != 0 }
        let known = states.reduce(UInt32(0)) { $0 | RuleLowering.ctBit($1) }
        guard bits != 0, known == bits else { return nil }
        return .ctState(states.sorted())
    }

    /// `meta load iifname|oifname => reg 1` + `cmp eq reg 1 NAME` (IFNAMSIZ, zero-padded).
    /// A shorter compare is nft's `"eth*"` wildcard, which fwctl never writes.
    func interface(at i: Int) -> Match? {
        guard case .meta(let m)? = at(i), m.key == Meta.Key.iifname.rawValue || m.key == Meta.Key.oifname.rawValue,
              let bytes = cmpEq(at: i + 1, len: 16), let end = bytes.firstIndex(of: 0), end > 0,
              bytes[end...].allSatisfy({ $0 == 0 }) else { return nil }
        let name = String(decoding: bytes[..<end], as: UTF8.self)
        guard Array(name.utf8) == Array(bytes[..<end]) else { return nil }
        return .interfaceName(m.key == Meta.Key.iifname.rawValue ? .source : .destination, name)
    }
}
