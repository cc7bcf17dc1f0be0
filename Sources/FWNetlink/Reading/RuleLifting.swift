import FWPolicy
import FWRuleset

/// A dumped rule's expressions back into an IR rule: the inverse of RuleLowering. It also
/// takes nft's own encodings of the same matches (a byte-aligned prefix as a shorter
/// payload load, a port range as `cmp gte` + `cmp lte`), so a table loaded with `nft -f`
/// reads back the same. Whatever is not such a sequence stays in the rule as `.opaque`
/// text, in its place: a read-back may look different, but never narrower or wider.
struct RuleLifting {
    /// Anonymous sets by name, to resolve `lookup` into `{ ... }`.
    let anonymous: [String: AnonymousSet]

    func lift(_ rule: TableDump.Rule) -> Rule {
        if let text = rule.unparsed { return Rule([.opaque(text)], [], nil, comment: rule.comment) }
        return lift(rule.exprs, comment: rule.comment)
    }

    func lift(_ items: [ReadExpr], comment: String?) -> Rule {
        let units = RuleScanner(items: items, anonymous: anonymous).units()

        var matches: [Match] = [], statements: [Statement] = [], verdict: Verdict?
        var raw: [String] = []
        func flushRaw() {
            if !raw.isEmpty { matches.append(.opaque(raw.joined(separator: " "))); raw = [] }
        }
        // fwctl's order is matches, statements, verdict. Anything else (a statement before
        // a match, something after the verdict) is shown as one opaque text from the first
        // statement on, so the rendering keeps the kernel's order.
        var phase = 0, firstNonMatch: Int?
        for (k, u) in units.enumerated() {
            switch (u.kind, phase) {
            case (.match(let m), 0): flushRaw(); matches.append(m)
            case (.raw, 0): raw.append(u.text)
            case (.statement(let s), 0...1):
                flushRaw(); firstNonMatch = firstNonMatch ?? k; phase = 1; statements.append(s)
            case (.verdict(let v), 0...1):
                flushRaw(); firstNonMatch = firstNonMatch ?? k; phase = 2; verdict = v
            default:
                flushRaw()
                let start = firstNonMatch ?? k
                matches.append(.opaque(units[start...].map(\.text).joined(separator: " ")))
                return Rule(matches, [], nil, comment: comment)
            }
        }
        flushRaw()
        return Rule(matches, statements, verdict, comment: comment)
    }
}

/// One recognized piece of a rule, or one expression that is not part of any.
struct LiftedUnit {
    enum Kind { case match(Match), statement(Statement), verdict(Verdict), raw }
    var kind: Kind
    /// The expressions' text, for when the unit ends up in an opaque part.
    var text: String
}

/// Walks the expressions left to right, taking the longest sequence fwctl (or nft, for the
/// same rule text) emits at each point.
struct RuleScanner {
    let items: [ReadExpr]
    let anonymous: [String: AnonymousSet]

    /// What the rule has already established about the packet: nft states a dependency
    /// (`meta nfproto`, `meta l4proto`) once per rule, e.g. `ip saddr X ip daddr Y`.
    struct Context { var family: AddressFamily?; var l4: UInt8? }

    func units() -> [LiftedUnit] {
        var out: [LiftedUnit] = []
        var ctx = Context()
        var i = 0
        while i < items.count {
            if let (m, n) = match(at: i, &ctx) {
                out.append(LiftedUnit(kind: .match(m), text: text(i, n))); i += n
            } else if let s = redirect(at: i) ?? ctZone(at: i) {
                out.append(LiftedUnit(kind: .statement(s), text: text(i, 2))); i += 2
            } else if let s = statement(items[i]) {
                out.append(LiftedUnit(kind: .statement(s), text: items[i].text)); i += 1
            } else if let v = verdict(items[i]) {
                out.append(LiftedUnit(kind: .verdict(v), text: items[i].text)); i += 1
            } else {
                out.append(LiftedUnit(kind: .raw, text: items[i].text)); i += 1
            }
        }
        return out
    }

    func text(_ i: Int, _ n: Int) -> String { items[i..<(i + n)].map(\.text).joined(separator: " ") }

    /// The expression at `i` if it exists and is plain.
    func at(_ i: Int) -> Expr? { i < items.count && items[i].plain ? items[i].expr : nil }

    // MARK: statements and verdicts

    func statement(_ item: ReadExpr) -> Statement? {
        guard item.plain else { return nil }
        switch item.expr {
        case .counter(let c):
            return .counter(packets: c.packets, bytes: c.bytes)
        case .limit(let l) where l.type == 0 && l.flags == 0 && l.rate > 0:
            switch l.unit {
            case 1: return .limit(rate: l.rate, per: .second, burst: l.burst)
            case 60: return .limit(rate: l.rate, per: .minute, burst: l.burst)
            case 3600: return .limit(rate: l.rate, per: .hour, burst: l.burst)
            default: return nil
            }
        case .log(let l):
            return l.prefix.map { .log(prefix: $0) }
        default:
            return nil
        }
    }

    /// `immediate reg 1 ZONE` + `ct set zone with reg 1 , dir original`: `ct original zone set ZONE`.
    func ctZone(at i: Int) -> Statement? {
        guard case .immediate(let imm)? = at(i), imm.dreg == reg1, let zone = imm.data, zone.count == 2,
              case .ct(let c)? = at(i + 1), c.sreg == reg1, c.key == Ct.zoneKey, c.direction == Ct.original else { return nil }
        return .ctZone(zone.withUnsafeBytes { $0.loadUnaligned(as: UInt16.self) })
    }

    /// `immediate reg 1 PORT` + `redir proto_min reg 1 flags 0x2`: `redirect to :PORT`.
    func redirect(at i: Int) -> Statement? {
        guard case .immediate(let imm)? = at(i), imm.dreg == reg1, let port = imm.data, port.count == 2,
              case .redir? = at(i + 1) else { return nil }
        return .redirect(port: UInt16(port[0]) << 8 | UInt16(port[1]))
    }

    func verdict(_ item: ReadExpr) -> Verdict? {
        guard item.plain else { return nil }
        if case .immediate(let v) = item.expr, v.dreg != regVerdict { return nil }
        switch item.expr {
        case .immediate(let v) where v.verdict == Immediate.accept.verdict && v.chain == nil: return .accept
        case .immediate(let v) where v.verdict == Immediate.drop.verdict && v.chain == nil: return .drop
        case .immediate(let v) where v.verdict == Immediate.jump("").verdict:
            guard let c = v.chain, !c.isEmpty else { return nil }
            return .jump(c)
        case .reject(let r) where r == .tcpReset: return .reject(.tcpReset)
        case .reject(let r) where r == .icmpxAdminProhibited: return .reject(.adminProhibited)
        default: return nil
        }
    }
}
