import FWPolicy

/// The ruleset IR: plain values shaped like nftables objects, with no libnftnl types.
/// The compiler produces it, every renderer reads it, and netlink encodes it and decodes
/// the kernel's table back into it, so `diff` compares like with like.
public struct Ruleset: Sendable, Equatable {
    public var table: Table
    /// Remarks for a person reading the rendering (proxied hosts, offline mode). They are
    /// not kernel objects and do not take part in a diff.
    public var notes: [String]

    public init(table: Table, notes: [String] = []) {
        self.table = table
        self.notes = notes
    }
}

/// fwctl owns exactly one table, always of family inet (IPv4 and IPv6 in one).
public struct Table: Sendable, Equatable {
    public var name: String
    /// Kept in the kernel as the table's comment (userdata): fwctl records there when, from
    /// which policy and by which version the table was applied.
    public var comment: String?
    public var sets: [NamedSet]
    public var chains: [Chain]

    public init(name: String, comment: String? = nil, sets: [NamedSet] = [], chains: [Chain] = []) {
        self.name = name
        self.comment = comment
        self.sets = sets
        self.chains = chains
    }

    public func set(named n: String) -> NamedSet? { sets.first { $0.name == n } }

    /// The sets that hold the addresses of host `name` in family `f`: what `fwctl watch`
    /// updates, element by element, when the name's answers change. Only the names sets
    /// list hosts; sets of fixed prefixes list none.
    public func sets(forHost name: String, family f: AddressFamily) -> [String] {
        sets.filter { $0.keyType.family == f && $0.hosts.contains(name) }.map(\.name)
    }
}

public struct NamedSet: Sendable, Equatable {
    public enum KeyType: String, Sendable, Equatable {
        case ipv4Addr = "ipv4_addr"
        case ipv6Addr = "ipv6_addr"

        public init(_ family: AddressFamily) { self = family == .ipv4 ? .ipv4Addr : .ipv6Addr }
        public var family: AddressFamily { self == .ipv4Addr ? .ipv4 : .ipv6 }
    }
    public enum Flag: String, Sendable, Equatable, Comparable {
        case interval, timeout
        public static func < (a: Self, b: Self) -> Bool { a.rawValue < b.rawValue }
    }

    public var name: String
    public var keyType: KeyType
    public var flags: [Flag]
    /// The canonical form of the set's contents, sorted: merged prefixes in an interval
    /// set, single addresses (host prefixes, unique) in any other.
    public var elements: [CIDR]
    /// Host names whose addresses belong in this set (not a kernel object: shown as a
    /// comment, and used by `watch` to know what to refresh).
    public var hosts: [String]

    public init(name: String, keyType: KeyType, flags: [Flag] = [.interval], elements: [CIDR] = [], hosts: [String] = []) {
        self.name = name
        self.keyType = keyType
        self.flags = flags.sorted()
        self.elements = elements
        self.hosts = hosts
    }
}

public struct Chain: Sendable, Equatable {
    public enum Hook: String, Sendable, Equatable { case input, output, forward, prerouting, postrouting }
    public enum ChainType: String, Sendable, Equatable { case filter, nat, route }
    public enum Policy: String, Sendable, Equatable { case accept, drop }

    /// Present on base chains, which the kernel calls from a hook.
    public struct Base: Sendable, Equatable {
        public var type: ChainType
        public var hook: Hook
        public var priority: Int
        public var policy: Policy
        public init(type: ChainType, hook: Hook, priority: Int, policy: Policy) {
            self.type = type; self.hook = hook; self.priority = priority; self.policy = policy
        }
    }

    public var name: String
    public var base: Base?
    public var rules: [Rule]

    public init(name: String, base: Base?, rules: [Rule] = []) {
        self.name = name
        self.base = base
        self.rules = rules
    }
}

public struct Rule: Sendable, Equatable {
    public var matches: [Match]
    public var statements: [Statement]
    public var verdict: Verdict?
    /// Kept in the kernel as the rule's comment (userdata).
    public var comment: String?

    public init(_ matches: [Match] = [], _ statements: [Statement] = [], _ verdict: Verdict?, comment: String? = nil) {
        self.matches = matches
        self.statements = statements
        self.verdict = verdict
        self.comment = comment
    }
}
