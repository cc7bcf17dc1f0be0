import Foundation
import FWPolicy
import FWRuleset

/// Renders the IR as `ipset restore`, `iptables-restore` and `ip6tables-restore` input.
/// fwctl's rules live in its own chains (`TABLE-output`, `TABLE-input`), each hooked into the
/// built-in chain by one jump, so nothing else in the host's tables is touched.
public struct IptablesRenderer: Sendable {
    public init() {}

    /// The three inputs, each loadable on its own by its tool.
    public struct Parts: Sendable {
        public var ipset: String
        public var ipv4: String
        public var ipv6: String
    }

    public func parts(_ r: Ruleset) -> Parts {
        Parts(ipset: ipsets(r).map(ipset).joined(),
              ipv4: restore(r.table, family: .ipv4),
              ipv6: restore(r.table, family: .ipv6))
    }

    public func render(_ r: Ruleset) -> String {
        let p = parts(r)
        var out = "# fwctl ruleset for iptables (table \"\(r.table.name)\")\n"
        for n in r.notes { out += "# \(n)\n" }
        out += "# Load in order: ipset restore; iptables-restore --noflush; ip6tables-restore --noflush\n"
        out += "\n# --- ipset restore ---\n" + p.ipset
        out += "\n# --- iptables-restore ---\n" + p.ipv4
        out += "\n# --- ip6tables-restore ---\n" + p.ipv6
        return out
    }

    /// ipset names are at most 31 bytes.
    public static func ipsetName(_ set: String, table: String) -> String {
        let name = "\(table)-\(set)"
        guard name.utf8.count > 31 else { return name }
        var h: UInt32 = 0x811c9dc5
        for b in name.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        return String(name.prefix(22)) + "-" + String(format: "%08x", h)
    }

    public static func chainName(_ chain: String, table: String) -> String { "\(table)-\(chain)" }

    /// One ipset of fwctl's: its name, what `ipset create NAME` takes after the name, and
    /// its members.
    public struct Ipset: Sendable, Equatable {
        public var name: String
        public var spec: String
        public var members: [String]
        public var hosts: [String]
    }

    public func ipsets(_ r: Ruleset) -> [Ipset] {
        r.table.sets.map { s in
            // An interval set holds prefixes; any other single addresses. `timeout 0`: entries
            // may carry a timeout (`fwctl watch`), and stay for good without one.
            let type = s.flags.contains(.interval) ? "hash:net" : "hash:ip"
            let timeout = s.flags.contains(.timeout) ? " timeout 0" : ""
            return Ipset(name: Self.ipsetName(s.name, table: r.table.name),
                         spec: "\(type) family \(s.keyType == .ipv4Addr ? "inet" : "inet6")\(timeout)",
                         members: s.elements.map(\.description), hosts: s.hosts)
        }
    }

    func ipset(_ s: Ipset) -> String {
        var out = ""
        if !s.hosts.isEmpty { out += "# hosts: \(s.hosts.joined(separator: ", "))\n" }
        out += "create \(s.name) \(s.spec)\n"
        for m in s.members { out += "add \(s.name) \(m)\n" }
        return out
    }

    /// One `iptables-restore` table section of fwctl's, as parts a backend can rearrange:
    /// its chains, the jumps that hook them into built-in chains, and their rules.
    public struct Section: Sendable, Equatable {
        /// "filter" or "nat".
        public var table: String
        /// fwctl's chains, in order.
        public var chains: [String]
        /// (built-in chain, fwctl chain), in the order they are inserted with `-I`: on a
        /// shared hook the last one inserted is jumped to first.
        public var hooks: [Hook]
        /// `-A CHAIN ...` lines.
        public var rules: [String]

        public struct Hook: Sendable, Equatable {
            public var builtin: String
            public var chain: String
            public init(builtin: String, chain: String) { self.builtin = builtin; self.chain = chain }
        }

        public init(table: String, chains: [String], hooks: [Hook], rules: [String]) {
            self.table = table; self.chains = chains; self.hooks = hooks; self.rules = rules
        }
    }

    /// The filter table, then the nat table when the ruleset has nat chains (transparent
    /// mode, the DNS filter), then the raw table when it has chains at nft's raw priority
    /// (the DNS filter's conntrack zone).
    public func sections(_ t: Table, family: AddressFamily) -> [Section] {
        let nat = t.chains.filter { $0.base?.type == .nat }
        let raw = t.chains.filter { Self.isRaw($0) }
        let filter = t.chains.filter { $0.base?.type != .nat && !Self.isRaw($0) }
        var out = [section("filter", filter, table: t.name, family: family)]
        if !nat.isEmpty { out.append(section("nat", nat, table: t.name, family: family)) }
        if !raw.isEmpty { out.append(section("raw", raw, table: t.name, family: family)) }
        return out
    }

    /// A filter chain before conntrack: iptables' raw table.
    static func isRaw(_ c: Chain) -> Bool {
        guard let b = c.base else { return false }
        return b.type == .filter && b.priority <= -300
    }

    func restore(_ t: Table, family: AddressFamily) -> String {
        sections(t, family: family).map { s in
            var out = "*\(s.table)\n"
            for c in s.chains { out += ":\(c) - [0:0]\n" }
            for h in s.hooks { out += "-I \(h.builtin) -j \(h.chain)\n" }
            for r in s.rules { out += r + "\n" }
            return out + "COMMIT\n"
        }.joined()
    }

    /// Each base chain is hooked by `-I`, so on a shared hook the last chain is jumped to
    /// first. In nat that puts dns_filter before transparent, as it must be: unlike nft's
    /// separate base chains, an ACCEPT in the first jumped chain (transparent's exemptions)
    /// would end the hook's traversal before the DNS redirect.
    func section(_ name: String, _ chains: [Chain], table: String, family: AddressFamily) -> Section {
        var out = Section(table: name, chains: chains.map { Self.chainName($0.name, table: table) }, hooks: [], rules: [])
        for c in chains {
            if let b = c.base {
                out.hooks.append(.init(builtin: b.hook.rawValue.uppercased(), chain: Self.chainName(c.name, table: table)))
            }
        }
        for c in chains {
            let chain = Self.chainName(c.name, table: table)
            for r in c.rules {
                for line in rule(r, family: family, table: table) { out.rules.append("-A \(chain) \(line)") }
            }
            if c.base?.policy == .drop, !(c.rules.last.map(isCatchAll) ?? false) {
                out.rules.append("-A \(chain) -j DROP")
            }
        }
        return out
    }

    func isCatchAll(_ r: Rule) -> Bool {
        guard r.matches.isEmpty, let v = r.verdict else { return false }
        if case .jump = v { return false }
        return true
    }

    /// The lines for one rule in one family: none when the rule is for the other family,
    /// several when iptables needs one rule per value (ICMP types).
    func rule(_ r: Rule, family: AddressFamily, table: String) -> [String] {
        var variants: [[String]] = [[]]
        for m in r.matches {
            guard let options = match(m, family: family, table: table) else { return [] }
            variants = variants.flatMap { v in options.map { v + [$0] } }
        }
        var tail: [String] = []
        for s in r.statements {
            if case .limit(let rate, let per, let burst) = s {
                tail.append("-m limit --limit \(rate)/\(per == .second ? "sec" : per == .minute ? "min" : "hour") --limit-burst \(burst)")
            }
        }
        var targets: [String] = []
        for s in r.statements {
            switch s {
            case .log(let prefix): targets.append("-j LOG --log-prefix \"\(prefix)\"")
            case .redirect(let port): targets.append("-j REDIRECT --to-ports \(port)")
            case .ctZone(let zone): targets.append("-j CT --zone-orig \(zone)")
            case .counter, .limit: break
            }
        }
        if let v = r.verdict { targets.append(verdict(v, family: family, table: table)) }
        return variants.flatMap { v in targets.map { (v + tail + [$0]).joined(separator: " ") } }
    }

    /// The alternatives for one match (usually one), or nil when the match excludes the family.
    func match(_ m: Match, family: AddressFamily, table: String) -> [String]? {
        switch m {
        case .interfaceName(let dir, let name):
            return ["\(dir == .source ? "-i" : "-o") \(name)"]
        case .ctState(let states):
            // iptables-save prints RELATED before ESTABLISHED.
            let order: [CtState] = [.invalid, .new, .related, .established, .untracked]
            return ["-m conntrack --ctstate " + order.filter(states.contains).map { $0.rawValue.uppercased() }.joined(separator: ",")]
        case .l4proto(let p):
            return ["-p \(p)"]
        case .address(let dir, let fam, let a):
            guard fam == family else { return nil }
            switch a {
            case .prefix(let c): return ["\(dir == .source ? "-s" : "-d") \(c.longDescription)"]
            case .set(let n):
                return ["-m set --match-set \(Self.ipsetName(n, table: table)) \(dir == .source ? "src" : "dst")"]
            }
        case .port(let proto, let dir, .ranges(let ranges)):
            let flag = dir == .source ? "sport" : "dport"
            let text = ranges.map { $0.isSingle ? "\($0.lower)" : "\($0.lower):\($0.upper)" }
            if text.count == 1 { return ["-p \(proto) -m \(proto) --\(flag) \(text[0])"] }
            // multiport takes at most 15 entries (a range counts as two).
            return chunks(ranges).map { chunk in
                "-p \(proto) -m multiport --\(flag)s " + chunk.map { $0.isSingle ? "\($0.lower)" : "\($0.lower):\($0.upper)" }.joined(separator: ",")
            }
        case .icmpType(let types):
            guard family == .ipv4 else { return nil }
            return types.map { "-p icmp -m icmp --icmp-type \($0.number)" }
        case .icmpv6Type(let types):
            guard family == .ipv6 else { return nil }
            return types.map { "-p ipv6-icmp -m icmp6 --icmpv6-type \($0.number)" }
        case .socketUser(let u):
            switch u {
            case .uid(let n): return ["-m owner --uid-owner \(n)"]
            case .name(let n): return ["-m owner --uid-owner \(n)"]
            }
        case .mark(let m):
            return ["-m mark --mark " + String(format: "0x%x", m)]
        case .socketMark(let m):
            // The socket's mark copied to the packet (when a socket takes it), then compared.
            return ["-m socket --restore-skmark -m mark --mark " + String(format: "0x%x", m)]
        case .opaque(let text):
            return ["-m comment --comment \"not an fwctl expression: \(text)\""]
        }
    }

    func chunks(_ ranges: [PortRange]) -> [[PortRange]] {
        var out: [[PortRange]] = [[]]
        var used = 0
        for r in ranges {
            let cost = r.isSingle ? 1 : 2
            if used + cost > 15 { out.append([]); used = 0 }
            out[out.count - 1].append(r)
            used += cost
        }
        return out
    }

    func verdict(_ v: Verdict, family: AddressFamily, table: String) -> String {
        switch v {
        case .accept: return "-j ACCEPT"
        case .drop: return "-j DROP"
        case .reject(.tcpReset): return "-j REJECT --reject-with tcp-reset"
        case .reject(.adminProhibited):
            return "-j REJECT --reject-with \(family == .ipv4 ? "icmp-admin-prohibited" : "icmp6-adm-prohibited")"
        case .jump(let c): return "-j \(Self.chainName(c, table: table))"
        }
    }
}
