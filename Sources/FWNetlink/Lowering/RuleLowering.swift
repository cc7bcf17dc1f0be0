import FWPolicy
import FWRuleset

/// IR rule -> nf_tables expressions, exactly as nft 1.x linearizes the same rule text, so a
/// table applied by fwctl lists the same as one loaded with `nft -f` (the parity test).
/// Anonymous sets a rule needs (`tcp dport { 22, 443 }`) are returned with it.
struct RuleLowering {
    /// Named sets by name, for their batch ids.
    let namedSetIDs: [String: UInt32]
    /// Hands out ids for anonymous sets.
    var nextSetID: UInt32

    mutating func lower(_ rule: Rule) -> (exprs: [Expr], anonymousSets: [KernelSet]) {
        var exprs: [Expr] = []
        var sets: [KernelSet] = []
        for m in rule.matches { lower(m, into: &exprs, sets: &sets) }
        for s in rule.statements {
            switch s {
            case .counter: exprs.append(.counter(Counter()))
            case .limit(let rate, let per, let burst):
                let unit: UInt64 = per == .second ? 1 : per == .minute ? 60 : 3600
                exprs.append(.limit(Limit(rate: rate, unit: unit, burst: burst)))
            case .log(let prefix): exprs.append(.log(Log(prefix: prefix)))
            case .redirect(let port):
                exprs += [.immediate(.load(ElementEncoding.bigEndian16(port))), .redir(Redir())]
            case .ctZone(let zone):
                // The zone is in host byte order, as nft loads it.
                exprs += [.immediate(.load(withUnsafeBytes(of: zone) { Array($0) })), .ct(.setZone())]
            }
        }
        if let v = rule.verdict {
            switch v {
            case .accept: exprs.append(.immediate(.accept))
            case .drop: exprs.append(.immediate(.drop))
            case .jump(let chain): exprs.append(.immediate(.jump(chain)))
            case .reject(.tcpReset): exprs.append(.reject(.tcpReset))
            case .reject(.adminProhibited): exprs.append(.reject(.icmpxAdminProhibited))
            }
        }
        return (exprs, sets)
    }

    private mutating func lower(_ m: Match, into e: inout [Expr], sets: inout [KernelSet]) {
        switch m {
        case .interfaceName(let dir, let name):
            // IFNAMSIZ bytes, zero-padded, as nft compares interface names.
            var bytes = Array(name.utf8.prefix(15))
            bytes += [UInt8](repeating: 0, count: 16 - bytes.count)
            e += [.meta(Meta(dir == .source ? .iifname : .oifname)), .cmp(Cmp(.eq, bytes))]
        case .ctState(let states):
            let bits = states.reduce(UInt32(0)) { $0 | Self.ctBit($1) }
            e += [.ct(Ct(key: Ct.stateKey)),
                  .bitwise(Bitwise(mask: Self.hostOrder32(bits), xor: [0, 0, 0, 0])),
                  .cmp(Cmp(.neq, [0, 0, 0, 0]))]
        case .l4proto(let p):
            e += [.meta(Meta(.l4proto)), .cmp(Cmp(.eq, [Proto.number(p)]))]
        case .address(let dir, let fam, let a):
            let field = Field.address(fam, dir)
            e += [.meta(Meta(.nfproto)), .cmp(Cmp(.eq, [Proto.nfproto(fam)]))]
            switch a {
            case .prefix(let c) where c.prefixLength % 8 == 0:
                // A host or byte-aligned prefix: nft loads only the prefix's bytes.
                let n = c.prefixLength / 8
                e += [.payload(Payload(.network, offset: field.offset, len: UInt32(n))),
                      .cmp(Cmp(.eq, Array(c.address.bytes.prefix(n))))]
            case .prefix(let c):
                let mask = c.netmask.bytes
                e += [.payload(Payload(.network, offset: field.offset, len: field.len)),
                      .bitwise(Bitwise(mask: mask, xor: [UInt8](repeating: 0, count: mask.count))),
                      .cmp(Cmp(.eq, c.address.bytes))]
            case .set(let name):
                e += [.payload(Payload(.network, offset: field.offset, len: field.len)),
                      .lookup(Lookup(set: name, setID: namedSetIDs[name]))]
            }
        case .port(let proto, let dir, .ranges(let ranges)):
            e += [.meta(Meta(.l4proto)), .cmp(Cmp(.eq, [Proto.number(proto)])),
                  .payload(Payload(.transport, offset: Field.port(dir), len: 2))]
            if ranges.count == 1, ranges[0].isSingle {
                e.append(.cmp(Cmp(.eq, ElementEncoding.bigEndian16(ranges[0].lower))))
            } else if ranges.count == 1 {
                // One range: nft compares twice rather than using the range expression.
                e += [.cmp(Cmp(.gte, ElementEncoding.bigEndian16(ranges[0].lower))),
                      .cmp(Cmp(.lte, ElementEncoding.bigEndian16(ranges[0].upper)))]
            } else if ranges.allSatisfy(\.isSingle) {
                e.append(anonymous(.inetService, len: 2, ranges.map { KernelElement(key: ElementEncoding.bigEndian16($0.lower), intervalEnd: false) },
                                   interval: false, sets: &sets))
            } else {
                let elements = ElementEncoding.intervals(ranges.map {
                    (ElementEncoding.bigEndian16($0.lower), ElementEncoding.bigEndian16($0.upper))
                })
                e.append(anonymous(.inetService, len: 2, elements, interval: true, sets: &sets))
            }
        case .icmpType(let types):
            icmp(v6: false, types.map(\.number), into: &e, sets: &sets)
        case .icmpv6Type(let types):
            icmp(v6: true, types.map(\.number), into: &e, sets: &sets)
        case .socketUser(.uid(let uid)):
            e += [.meta(Meta(.skuid)), .cmp(Cmp(.eq, Self.hostOrder32(uid)))]
        case .mark(let mark):
            e += [.meta(Meta(.mark)), .cmp(Cmp(.eq, Self.hostOrder32(mark)))]
        case .socketMark(let mark):
            e += [.socket(Socket(.mark)), .cmp(Cmp(.eq, Self.hostOrder32(mark)))]
        case .socketUser(.name(let name)):
            // Kernel commands resolve proxy.user before compiling (Pipeline); a name here
            // would have no uid to send.
            preconditionFailure("cannot encode the unresolved user \(name)")
        case .opaque(let text):
            // Only the kernel reader makes these; a compiled ruleset never holds one, and
            // dropping it silently would widen the rule.
            preconditionFailure("cannot encode an opaque match: \(text)")
        }
    }

    private mutating func icmp(v6: Bool, _ numbers: [UInt8], into e: inout [Expr], sets: inout [KernelSet]) {
        e += [.meta(Meta(.nfproto)), .cmp(Cmp(.eq, [v6 ? Proto.nfprotoIPv6 : Proto.nfprotoIPv4])),
              .meta(Meta(.l4proto)), .cmp(Cmp(.eq, [v6 ? Proto.icmpv6 : Proto.icmp])),
              .payload(Payload(.transport, offset: 0, len: 1))]
        if numbers.count == 1 {
            e.append(.cmp(Cmp(.eq, numbers)))
        } else {
            e.append(anonymous(v6 ? .icmpv6Type : .icmpType, len: 1, numbers.map { KernelElement(key: [$0], intervalEnd: false) },
                               interval: false, sets: &sets))
        }
    }

    private mutating func anonymous(_ type: DataType, len: UInt32, _ elements: [KernelElement], interval: Bool,
                                    sets: inout [KernelSet]) -> Expr {
        nextSetID += 1
        let set = KernelSet(name: "__set%d", id: nextSetID, keyType: type, keyLen: len,
                            flags: SetFlag.anonymous | SetFlag.constant | (interval ? SetFlag.interval : 0),
                            elements: elements, descSize: UInt32(elements.count))
        sets.append(set)
        return .lookup(Lookup(set: set.name, setID: set.id))
    }

    /// nf_conntrack state bits: invalid 1, then 1 << (ctinfo + 1), untracked 1 << 6.
    static func ctBit(_ s: CtState) -> UInt32 {
        switch s {
        case .invalid: return 1
        case .established: return 2
        case .related: return 4
        case .new: return 8
        case .untracked: return 64
        }
    }

    /// ct state, skuid and mark are compared in host byte order.
    static func hostOrder32(_ v: UInt32) -> [UInt8] { withUnsafeBytes(of: v) { Array($0) } }
}
