import CNetfilter

/// One expression of a dumped rule: its decoded value, nft-debug-style text for when it
/// has to be shown as opaque, and whether it is "plain", i.e. has no attribute beyond
/// those the `Expr` value holds. The `Expr` decoders read only what fwctl sets, so an
/// inverted lookup, a `log level`, a shift or an immediate into a data register would
/// otherwise decode as something fwctl emits and be silently misread.
struct ReadExpr {
    var expr: Expr
    var text: String
    var plain: Bool

    init(_ e: OpaquePointer) {
        expr = Expr(e)
        let name = expr.name
        text = Self.describe(e, name: name)
        plain = Self.isPlain(e, expr)
    }

    /// For tests: an expression that needs no libnftnl object.
    init(_ expr: Expr, text: String, plain: Bool = true) {
        self.expr = expr; self.text = text; self.plain = plain
    }

    static func isPlain(_ e: OpaquePointer, _ x: Expr) -> Bool {
        switch x {
        case .meta(let m):
            return m.dreg == reg1 && !e.has(attr(NFTNL_EXPR_META_SREG))
        case .payload(let p):
            return p.dreg == reg1 && !e.has(attr(NFTNL_EXPR_PAYLOAD_SREG)) && !e.has(attr(NFTNL_EXPR_PAYLOAD_CSUM_TYPE))
                && !e.has(attr(NFTNL_EXPR_PAYLOAD_FLAGS))
        case .bitwise(let b):
            // NFT_BITWISE_BOOL (0) is the mask-and-xor form; the others are shifts.
            let op = e.has(attr(NFTNL_EXPR_BITWISE_OP)) ? e.u32(attr(NFTNL_EXPR_BITWISE_OP)) : 0
            return op == 0 && !e.has(attr(NFTNL_EXPR_BITWISE_DATA)) && b.sreg == reg1 && b.dreg == reg1
                && b.mask.count == b.xor.count && e.u32(attr(NFTNL_EXPR_BITWISE_LEN)) == UInt32(b.mask.count)
        case .ct(let c):
            // The load form, or the one set form fwctl writes (ct original zone set).
            if c.sreg == nil { return c.dreg == reg1 && c.direction == nil }
            return c.sreg == reg1 && c.key == Ct.zoneKey && c.direction == Ct.original && !e.has(attr(NFTNL_EXPR_CT_DREG))
        case .lookup(let l):
            // A lookup with a destination register is a map; flag 1 is `!= @set`.
            let flags = e.has(attr(NFTNL_EXPR_LOOKUP_FLAGS)) ? e.u32(attr(NFTNL_EXPR_LOOKUP_FLAGS)) : 0
            return l.sreg == reg1 && flags == 0 && !e.has(attr(NFTNL_EXPR_LOOKUP_DREG)) && !l.set.isEmpty
        case .cmp(let c):
            return c.sreg == reg1
        case .range(let r):
            return r.sreg == reg1
        case .counter, .limit, .reject:
            return true
        case .log(let l):
            // The kernel always reports a level; 4 (warn) is the default nft does not print.
            let level = e.has(attr(NFTNL_EXPR_LOG_LEVEL)) ? e.u32(attr(NFTNL_EXPR_LOG_LEVEL)) : 4
            let flags = e.has(attr(NFTNL_EXPR_LOG_FLAGS)) ? e.u32(attr(NFTNL_EXPR_LOG_FLAGS)) : 0
            return l.prefix != nil && level == 4 && flags == 0
                && ![NFTNL_EXPR_LOG_GROUP, NFTNL_EXPR_LOG_SNAPLEN, NFTNL_EXPR_LOG_QTHRESHOLD].contains { e.has(attr($0)) }
        case .immediate(let i):
            // A verdict into the verdict register, or data into register 1 (for redirect);
            // RuleScanner takes the data form only right before the statement that uses it.
            if i.dreg == regVerdict { return i.verdict != nil && i.data == nil }
            return i.dreg == reg1 && i.verdict == nil && i.chain == nil && i.data != nil
        case .redir(let r):
            // The kernel reports proto_max as proto_min when none was given.
            return r.protoMinReg == reg1 && r.flags == Redir.protoSpecified
                && (!e.has(attr(NFTNL_EXPR_REDIR_REG_PROTO_MAX)) || e.u32(attr(NFTNL_EXPR_REDIR_REG_PROTO_MAX)) == reg1)
        case .socket(let s):
            return s.dreg == reg1 && !e.has(attr(NFTNL_EXPR_SOCKET_LEVEL))
        case .other:
            return false
        }
    }

    /// "[ meta load mark => reg 1 ]", as `nft --debug=netlink` prints it. A counter is
    /// printed without its numbers, so an unchanged opaque rule does not differ in a diff
    /// just because packets went through it.
    static func describe(_ e: OpaquePointer, name: String) -> String {
        if name == Counter.name { return "[ counter ]" }
        var buf = [CChar](repeating: 0, count: 1024)
        let n = nftnl_expr_snprintf(&buf, buf.count, e, UInt32(NFTNL_OUTPUT_DEFAULT.rawValue), 0)
        guard n > 0 else { return "[ \(name) ]" }
        let body = String(cString: buf).trimmingTrailingSpaces
        return body.isEmpty ? "[ \(name) ]" : "[ \(name) \(body) ]"
    }
}

extension Expr {
    var name: String {
        switch self {
        case .meta: return Meta.name
        case .cmp: return Cmp.name
        case .payload: return Payload.name
        case .bitwise: return Bitwise.name
        case .ct: return Ct.name
        case .lookup: return Lookup.name
        case .range: return Range.name
        case .counter: return Counter.name
        case .limit: return Limit.name
        case .log: return Log.name
        case .reject: return Reject.name
        case .immediate: return Immediate.name
        case .redir: return Redir.name
        case .socket: return Socket.name
        case .other(let n): return n
        }
    }
}

fileprivate extension String {
    var trimmingTrailingSpaces: String {
        var s = Substring(self)
        while s.last == " " { s = s.dropLast() }
        return String(s)
    }
}
