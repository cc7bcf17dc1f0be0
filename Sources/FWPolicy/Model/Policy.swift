/// The typed, validated policy (version 1). Every value here has passed validation:
/// code below the reader never re-checks ranges or formats.
public struct Policy: Sendable, Equatable {
    public var version: Int = 1
    public var firewall = FirewallSettings()
    public var dns = DNSSettings()
    public var proxy: ProxySettings?
    public var allows: [AllowRule] = []

    public init() {}

    /// Names the kernel needs addresses for: exact hosts with `via = "direct"`, in policy order,
    /// without repeats.
    public var directHostNames: [String] {
        var seen = Set<String>()
        return allows.compactMap { rule -> String? in
            guard rule.via == .direct, case .host(let h) = rule.target, !h.isWildcard else { return nil }
            return seen.insert(h.name).inserted ? h.name : nil
        }
    }

    /// Whether a name is marked optional by every allow entry that lists it.
    public func isOptional(_ name: String) -> Bool {
        let entries = allows.filter { if case .host(let h) = $0.target { return h.name == name && !h.isWildcard }; return false }
        return !entries.isEmpty && entries.allSatisfy(\.optional)
    }
}

public struct FirewallSettings: Sendable, Equatable {
    public enum Egress: String, Sendable, CaseIterable { case reject, drop }
    public enum Inbound: String, Sendable, CaseIterable { case established, open }
    public enum ICMP: String, Sendable, CaseIterable { case essential, none }

    public var table = "fwctl"
    public var egress = Egress.reject
    public var inbound = Inbound.established
    public var logDenied = true
    public var hostNetwork = false
    public var icmp = ICMP.essential
    public init() {}
}

public struct DNSSettings: Sendable, Equatable {
    /// nil: the nameservers of /etc/resolv.conf, found when the policy is used.
    public var servers: [SocketEndpoint]?
    public var timeoutMs = 2000
    public var attempts = 2
    public var minTTL = 60
    public var maxTTL = 3600
    public var filter = false
    public var filterPort: UInt16 = 5353
    public init() {}
}

extension DNSSettings {
    /// With `filter = true`, the socket mark (SO_MARK) fwctl's own DNS queries carry: they
    /// are the only ones not redirected to the filter, and the only ones that reach the
    /// resolvers. Setting SO_MARK needs CAP_NET_ADMIN, which the sandbox user lacks, so the
    /// sandbox cannot pass its queries off as fwctl's. ("FWDS" in ASCII.)
    public static let filterMark: UInt32 = 0x4657_4453

    /// The conntrack zone of fwctl's own (marked) DNS flows, original direction only
    /// ("FW"). A sandbox query whose source port and server equal those of a recent query of
    /// the forwarder's would otherwise meet that flow in conntrack, skip the redirect and be
    /// dropped (EPERM); in a zone of their own the two never meet, and the sandbox's query
    /// is a new flow, redirected to the filter like any other.
    public static let filterZone: UInt16 = 0x4657
}

public struct ProxySettings: Sendable, Equatable {
    public enum User: Sendable, Equatable, CustomStringConvertible {
        case name(String)
        case uid(UInt32)
        public var description: String {
            switch self { case .name(let n): return n; case .uid(let u): return "\(u)" }
        }
    }

    public var listen = SocketEndpoint(address: IPAddress("127.0.0.1")!, port: 3128)
    public var user: User?
    public var transparent = false
    public var transparentPort: UInt16 = 3130
    public var caDir = "/var/lib/fwctl/ca"
    public var caCert = "/etc/fwctl/ca.pem"
    public var upstreamCA: String?
    public var maxBodyBytes = 33_554_432
    public var accessLog: String?
    public var endpoints: [ProxyEndpoint] = []
    public init() {}
}

/// Base-URL mode: plain HTTP in from the sandbox, TLS out to `target`.
public struct ProxyEndpoint: Sendable, Equatable {
    public var listen: SocketEndpoint
    public var target: TargetURL
    /// Optional: the variable `fwctl env` sets to this endpoint's URL, e.g. ANTHROPIC_BASE_URL.
    public var env: String?
}

/// An upstream base URL: scheme, host, port, optional path prefix.
public struct TargetURL: Sendable, Equatable, CustomStringConvertible {
    public var scheme: String
    public var host: HostPattern
    public var port: UInt16
    public var path: String
    public var description: String {
        let defaultPort: UInt16 = scheme == "https" ? 443 : 80
        return "\(scheme)://\(host)\(port == defaultPort ? "" : ":\(port)")\(path)"
    }
}

public struct AllowRule: Sendable, Equatable {
    public enum Target: Sendable, Equatable {
        case host(HostPattern)
        case cidr([CIDR])
        /// The saved GitHub /meta document (path as written, relative to the policy) and the
        /// merged prefixes of its web, api and git ranges.
        case githubMeta(path: String, cidrs: [CIDR])
    }
    public enum Via: String, Sendable, CaseIterable { case direct, proxy }

    /// Position in the policy's `allow` array, counted from 0.
    public var index: Int
    public var target: Target
    public var ports: [PortRange] = [PortRange(port: 443)]
    public var proto = TransportProtocol.tcp
    public var via = Via.direct
    public var optional = false
    public var methods: [String]?
    public var paths: [String]?
    public var inject: [Inject] = []

    public init(index: Int, target: Target) { self.index = index; self.target = target }

    /// Fixed prefixes of this entry (cidr or github_meta); empty for hosts.
    public var cidrs: [CIDR] {
        switch target {
        case .host: return []
        case .cidr(let c), .githubMeta(_, let c): return c
        }
    }

    /// A short human label: the host, "cidr", or the meta file.
    public var label: String {
        switch target {
        case .host(let h): return h.description
        case .cidr(let c): return c.map(\.description).joined(separator: ", ")
        case .githubMeta(let p, _): return "github_meta \(p)"
        }
    }
}

public struct Inject: Sendable, Equatable {
    public enum Secret: Sendable, Equatable, CustomStringConvertible {
        case env(String)
        case file(String)
        /// Names the source, never the value.
        public var description: String {
            switch self { case .env(let n): return "env:\(n)"; case .file(let p): return "file:\(p)" }
        }
    }
    public var header: String
    public var placeholder: String
    public var secret: Secret
    public var format = "{}"
}
