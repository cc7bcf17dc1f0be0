import FWRuleset

/// Reads fwctl's table back from the kernel into the IR, for `diff`, `status` and
/// `apply --dry-run`. Everything happens in the calling thread's network namespace.
public enum KernelReader {
    /// The dumps (table, chains, sets, elements, rules) are separate requests; a change
    /// by someone else between them would mix two rulesets, so the whole read is repeated
    /// until the ruleset generation is the same before and after, as nft does.
    static let attempts = 5

    /// Reads fwctl's table back from the kernel into the IR; nil when the table does not exist.
    public static func read(table: String) throws(NetlinkError) -> Ruleset? {
        let socket = try NetlinkSocket()
        for _ in 1...attempts {
            let before = try Kernel.generation(socket)
            let dump = try Dump.table(table, socket: socket)
            guard try Kernel.generation(socket) == before else { continue }
            return dump.map(ruleset)
        }
        throw .system("table inet \(table) kept changing while it was read (\(attempts) attempts); try again")
    }

    /// The dumped objects as IR. Chains and rules keep the kernel's order. Named sets fwctl
    /// cannot express are left out with a note; rules never are (see RuleLifting).
    static func ruleset(_ d: TableDump) -> Ruleset {
        var notes: [String] = []
        if d.flags & 1 != 0 {
            notes.append("table inet \(d.name) is dormant (flags 0x\(String(d.flags, radix: 16))): none of its chains is evaluated")
        } else if d.flags != 0 {
            notes.append("table inet \(d.name) has flags 0x\(String(d.flags, radix: 16)), which fwctl never sets")
        }
        var sets: [NamedSet] = []
        var anonymous: [String: AnonymousSet] = [:]
        for s in d.sets {
            if s.isAnonymous {
                anonymous[s.name] = SetReading.anonymous(s)
                continue
            }
            switch SetReading.named(s) {
            case .set(let n): sets.append(n)
            case .foreign(let note): notes.append(note)
            }
        }
        var chains = d.chains.map(chain)
        var index: [String: Int] = [:]
        for (i, c) in chains.enumerated() { index[c.name] = i }
        let lifting = RuleLifting(anonymous: anonymous)
        for r in d.rules {
            guard let i = index[r.chain] else { continue }
            chains[i].rules.append(lifting.lift(r))
        }
        return Ruleset(table: Table(name: d.name, comment: d.comment, sets: sets, chains: chains), notes: notes)
    }

    /// A chain; a base chain fwctl cannot express (another hook, type or policy) or a chain
    /// comment becomes a first opaque rule, so it shows in a diff instead of being guessed.
    static func chain(_ c: TableDump.Chain) -> Chain {
        var out = Chain(name: c.name, base: nil)
        var extra: [String] = []
        if let hookNumber = c.hook {
            if let base = base(c, hookNumber) {
                out.base = base
            } else {
                extra.append("[ base chain type \(c.type ?? "?") hook \(hookNumber) priority \(c.priority) policy \(c.policy.map(String.init) ?? "?") ]")
            }
        }
        if let comment = c.comment { extra.append("[ chain comment \"\(comment)\" ]") }
        if !extra.isEmpty { out.rules.append(Rule([.opaque(extra.joined(separator: " "))], [], nil)) }
        return out
    }

    static func base(_ c: TableDump.Chain, _ hookNumber: UInt32) -> Chain.Base? {
        // NF_INET_* hook numbers; NF_DROP 0 and NF_ACCEPT 1 as chain policies.
        let hooks: [UInt32: Chain.Hook] = [0: .prerouting, 1: .input, 2: .forward, 3: .output, 4: .postrouting]
        guard let hook = hooks[hookNumber], let type = c.type.flatMap(Chain.ChainType.init(rawValue:)) else { return nil }
        let policy: Chain.Policy
        switch c.policy {
        case 0: policy = .drop
        case 1, nil: policy = .accept // a base chain without a policy attribute accepts
        default: return nil
        }
        return Chain.Base(type: type, hook: hook, priority: Int(c.priority), policy: policy)
    }
}
