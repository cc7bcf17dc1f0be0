import FWPolicy
import FWRuleset

/// What watch needs of a policy: its names, the sets that hold each name's addresses,
/// the TTL bounds and the filter's settings. Built from the compiled ruleset, so watch
/// writes exactly the sets `apply` made.
public struct WatchedPolicy: Sendable {
    public var policy: Policy
    /// The policy file's SHA-256, as `apply` records it in the table's comment.
    public var sha256: String
    public var table: String
    /// The resolvers watch and the filter ask.
    public var servers: [SocketEndpoint]
    /// For each direct host name: its sets by address family.
    public var sets: [String: [AddressFamily: [String]]]

    public init(policy: Policy, sha256: String, servers: [SocketEndpoint], ruleset: Ruleset) {
        self.policy = policy
        self.sha256 = sha256
        self.table = ruleset.table.name
        self.servers = servers
        var sets: [String: [AddressFamily: [String]]] = [:]
        for s in ruleset.table.sets where s.flags.contains(.timeout) {
            for host in s.hosts { sets[host, default: [:]][s.keyType.family, default: []].append(s.name) }
        }
        self.sets = sets
        var exact = Set<String>(), suffixes: [String] = []
        let patterns = policy.allows.compactMap { rule -> HostPattern? in
            if case .host(let h) = rule.target { return h } else { return nil }
        } + (policy.proxy?.endpoints.map(\.target.host) ?? [])
        for h in patterns {
            if h.isWildcard { suffixes.append("." + h.name) } else { exact.insert(h.name) }
        }
        exactNames = exact
        wildcardSuffixes = Array(Set(suffixes))
    }

    /// The policy's host patterns, made once: the filter asks for every query.
    private let exactNames: Set<String>
    private let wildcardSuffixes: [String]

    /// The names watch keeps fresh, sorted.
    public var names: [String] { sets.keys.sorted() }

    /// Every set watch writes.
    public var setNames: [String] { Array(Set(sets.values.flatMap { $0.values.flatMap { $0 } })).sorted() }

    public var minTTL: UInt32 { UInt32(policy.dns.minTTL) }
    public var maxTTL: UInt32 { UInt32(policy.dns.maxTTL) }

    /// A record's TTL within min_ttl..max_ttl; nil (no answer) counts as min_ttl.
    public func clamp(_ ttl: UInt32?) -> UInt32 {
        min(max(ttl ?? minTTL, minTTL), maxTTL)
    }

    /// Whether the DNS filter answers `name`: any host a policy entry names (exact or
    /// wildcard, direct or proxied) or an endpoint targets. The proxy resolves proxied
    /// names through the filter too, and transparent mode needs the client to resolve them.
    public func allows(_ name: String) -> Bool {
        guard let host = HostPattern.normalize(name) else { return false }
        return exactNames.contains(host) || wildcardSuffixes.contains { host.hasSuffix($0) }
    }
}
