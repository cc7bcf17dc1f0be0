import FWPolicy

/// How to reach the DNS servers. The numbers are explicit because ldns's resolver
/// defaults can stall for close to a minute on a dead server.
public struct ResolverOptions: Sendable {
    /// Tried in order; a server that times out or answers SERVFAIL/REFUSED passes the
    /// question on to the next one.
    public var servers: [SocketEndpoint]
    /// How long one query waits for one server.
    public var timeoutMs: Int
    /// Rounds over all servers.
    public var attempts: Int
    /// At most this many names in flight at once (each with its A and AAAA query).
    public var parallelism: Int
    /// SO_MARK for every socket, so the DNS filter's nftables redirect lets fwctl's own
    /// queries through to the real servers; nil leaves sockets unmarked. Setting a mark
    /// needs CAP_NET_ADMIN: without it (EPERM) the sockets go unmarked.
    public var mark: UInt32?

    public init(servers: [SocketEndpoint], timeoutMs: Int = 2000, attempts: Int = 2, parallelism: Int = 64,
                mark: UInt32? = nil) {
        self.servers = servers
        self.timeoutMs = timeoutMs
        self.attempts = attempts
        self.parallelism = parallelism
        self.mark = mark
    }
}

/// The overall outcome for one name.
public enum NameStatus: String, Sendable, Codable {
    case ok, nxdomain, nodata, servfail, refused, timeout, error
}

/// What one name resolved to, or why it did not.
public struct NameResolution: Sendable, Codable, Equatable {
    /// As queried: lower case, no trailing dot.
    public var name: String
    public var status: NameStatus
    /// A and AAAA together, sorted (IPv4 first), unique.
    public var addresses: [IPAddress]
    /// The minimum TTL along the CNAME chain and the address records; nil when there
    /// are no addresses.
    public var ttl: UInt32?
    /// CNAME targets in order, e.g. ["cdn.example.test", "edge.cdn.test"].
    public var chain: [String]
    /// Human text: rcode names, or why one family failed while the other answered.
    public var detail: String?

    public var isResolved: Bool { status == .ok }

    public init(name: String, status: NameStatus, addresses: [IPAddress] = [], ttl: UInt32? = nil,
                chain: [String] = [], detail: String? = nil) {
        self.name = name
        self.status = status
        self.addresses = addresses
        self.ttl = ttl
        self.chain = chain
        self.detail = detail
    }
}

/// The outcome for every name of one `Resolver.resolve` call.
public struct Resolution: Sendable, Codable {
    /// Sorted by name, one entry per distinct name.
    public var results: [NameResolution]

    public init(results: [NameResolution]) {
        self.results = results.sorted { $0.name < $1.name }
    }

    private enum CodingKeys: String, CodingKey { case results }

    /// Decoded results are sorted too: `result(for:)` relies on the order.
    public init(from decoder: Decoder) throws {
        self.init(results: try decoder.container(keyedBy: CodingKeys.self).decode([NameResolution].self, forKey: .results))
    }

    /// Looks a name up the way it was normalized for querying; a binary search, since the
    /// compiler asks once per host.
    public func result(for name: String) -> NameResolution? {
        let key = DNSName.normalize(name)
        var low = 0, high = results.count
        while low < high {
            let mid = (low + high) / 2
            if results[mid].name < key { low = mid + 1 } else { high = mid }
        }
        return low < results.count && results[low].name == key ? results[low] : nil
    }

    public var failures: [NameResolution] { results.filter { !$0.isResolved } }
}

/// The one place names are normalized, so `resolve` and `result(for:)` agree.
enum DNSName {
    static func normalize(_ name: String) -> String {
        let lower = name.lowercased()
        return lower.hasSuffix(".") ? String(lower.dropLast()) : lower
    }
}
