import Foundation
import FWPolicy
import FWRuleset

/// Renders the IR the way `nft list table inet NAME` prints it, so an administrator reads
/// it as nft's own output, and `nft -f` loads it.
public struct NftRenderer: Sendable {
    public struct Options: Sendable {
        /// Print packet and byte counts (for status); compiled rules have none.
        public var counters: Bool
        /// Print the ruleset's notes and the host list of each set as comments.
        public var notes: Bool
        /// Print the table's comment (the apply record), as `nft list` does.
        public var tableComment: Bool
        public init(counters: Bool = false, notes: Bool = true, tableComment: Bool = true) {
            self.counters = counters
            self.notes = notes
            self.tableComment = tableComment
        }

        /// What `diff` compares: the rules and sets only, without counters, notes and the
        /// apply record, which differ between any two applies of the same policy.
        public static let comparison = Options(counters: false, notes: false, tableComment: false)
    }

    public var options: Options
    public init(options: Options = Options()) { self.options = options }

    public func render(_ r: Ruleset) -> String {
        var out = ""
        if options.notes { for n in r.notes { out += "# \(n)\n" } }
        out += "table inet \(r.table.name) {\n"
        if options.tableComment, let c = r.table.comment { out += "\tcomment \(quoted(c))\n" }
        var blocks: [String] = r.table.sets.map(set)
        blocks += r.table.chains.map(chain)
        out += blocks.joined(separator: "\n")
        out += "}\n"
        return out
    }

    func set(_ s: NamedSet) -> String {
        var out = ""
        if options.notes && !s.hosts.isEmpty {
            out += "\t# hosts: \(s.hosts.joined(separator: ", "))\n"
        }
        out += "\tset \(s.name) {\n"
        out += "\t\ttype \(s.keyType.rawValue)\n"
        if !s.flags.isEmpty { out += "\t\tflags \(s.flags.map(\.rawValue).joined(separator: ","))\n" }
        if !s.elements.isEmpty { out += elements(s.elements.map(\.description), perLine: s.keyType == .ipv4Addr ? 2 : 1) }
        out += "\t}\n"
        return out
    }

    /// nft's layout: a fixed number of elements per line by key type (two IPv4 addresses,
    /// one IPv6 address), continuation lines aligned under the first element.
    func elements(_ items: [String], perLine: Int) -> String {
        var lines: [String] = []
        for start in stride(from: 0, to: items.count, by: perLine) {
            lines.append(items[start..<min(start + perLine, items.count)].joined(separator: ", "))
        }
        return "\t\telements = { " + lines.joined(separator: ",\n\t\t\t     ") + " }\n"
    }

    func chain(_ c: Chain) -> String {
        var out = "\tchain \(c.name) {\n"
        if let b = c.base {
            out += "\t\ttype \(b.type.rawValue) hook \(b.hook.rawValue) priority \(Self.priorityName(b.priority, hook: b.hook)); policy \(b.policy.rawValue);\n"
        }
        for r in c.rules { out += "\t\t\(rule(r))\n" }
        out += "\t}\n"
        return out
    }

    /// nft's standard priority names for the values fwctl uses, as `nft list` prints them:
    /// raw (-300) on any hook; dstnat and srcnat only on the hooks they are named for (a nat output chain at -100
    /// prints as -100); within 10 of filter (0) as an offset of it ("filter - 10").
    static func priorityName(_ p: Int, hook: Chain.Hook) -> String {
        switch (p, hook) {
        case (0, _): return "filter"
        case (-10 ... -1, _): return "filter - \(-p)"
        case (1...10, _): return "filter + \(p)"
        case (-300, _): return "raw"
        case (-100, .prerouting): return "dstnat"
        case (100, .postrouting): return "srcnat"
        default: return "\(p)"
        }
    }

    public func rule(_ r: Rule) -> String {
        var parts = r.matches.map(match)
        parts += r.statements.map(statement)
        if let v = r.verdict { parts.append(verdict(v)) }
        if let c = r.comment { parts.append("comment \(quoted(c))") }
        return parts.joined(separator: " ")
    }

    func match(_ m: Match) -> String {
        switch m {
        case .interfaceName(let dir, let name):
            return "\(dir == .source ? "iifname" : "oifname") \(quoted(name))"
        case .ctState(let states):
            return "ct state " + states.sorted().map(\.rawValue).joined(separator: ",")
        case .l4proto(let p):
            return "meta l4proto \(p)"
        case .address(let dir, let fam, let a):
            let value: String
            switch a {
            case .prefix(let c): value = c.description
            case .set(let n): value = "@\(n)"
            }
            return "\(fam == .ipv4 ? "ip" : "ip6") \(dir == .source ? "saddr" : "daddr") \(value)"
        case .port(let proto, let dir, .ranges(let ranges)):
            return "\(proto) \(dir == .source ? "sport" : "dport") \(braced(ranges.map(\.description)))"
        case .icmpType(let types):
            return "icmp type \(braced(types.map(\.rawValue)))"
        case .icmpv6Type(let types):
            return "icmpv6 type \(braced(types.map(\.rawValue)))"
        case .socketUser(let u):
            return "meta skuid \(u)"
        case .mark(let m):
            return "meta mark " + String(format: "0x%08x", m)
        case .socketMark(let m):
            return "socket mark " + String(format: "0x%08x", m)
        case .opaque(let text):
            // Not nft syntax on purpose: fed back to `nft -f`, the rule is refused instead
            // of loading without the part fwctl could not read.
            return "[not fwctl's: \(text)]"
        }
    }

    func statement(_ s: Statement) -> String {
        switch s {
        case .counter(let packets, let bytes):
            guard options.counters else { return "counter" }
            return "counter packets \(packets ?? 0) bytes \(bytes ?? 0)"
        case .limit(let rate, let per, let burst):
            // nft leaves out the default burst of 5 packets.
            return "limit rate \(rate)/\(per.rawValue)" + (burst == 5 ? "" : " burst \(burst) packets")
        case .log(let prefix):
            return "log prefix \(quoted(prefix))"
        case .redirect(let port):
            return "redirect to :\(port)"
        case .ctZone(let zone):
            return "ct original zone set \(zone)"
        }
    }

    func verdict(_ v: Verdict) -> String {
        switch v {
        case .accept: return "accept"
        case .drop: return "drop"
        case .reject(let kind): return "reject with \(kind.rawValue)"
        case .jump(let c): return "jump \(c)"
        }
    }

    func braced(_ items: [String]) -> String {
        items.count == 1 ? items[0] : "{ " + items.joined(separator: ", ") + " }"
    }

    func quoted(_ s: String) -> String {
        "\"" + s.replacingOccurrences(of: "\\", with: "\\\\").replacingOccurrences(of: "\"", with: "\\\"") + "\""
    }
}
