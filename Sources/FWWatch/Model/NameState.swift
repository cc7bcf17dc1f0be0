import FWPolicy
import FWResolve

/// One name's life in watch: its last good answer and when to ask again.
public struct NameState: Sendable {
    public enum Health: String, Sendable, Codable {
        /// Not asked yet.
        case pending
        case ok
        /// The servers failed (timeout, SERVFAIL...): the last good answer is kept.
        case stale
        /// NXDOMAIN or no records: the addresses go after their grace.
        case gone
    }

    public var name: String
    public var health = Health.pending
    /// The last good answer.
    public var addresses: [IPAddress] = []
    /// Its TTL, clamped to min_ttl..max_ttl.
    public var ttl: UInt32 = 0
    /// When the answer was last confirmed by a server (monotonic seconds).
    public var confirmed: Double?
    public var nextRefresh: Double = 0
    /// Why the last refresh failed, while stale or gone.
    public var problem: String?

    public init(name: String) { self.name = name }
}

/// What one refresh of one name changed, for the log.
public struct NameChange: Sendable, Equatable {
    public var name: String
    public var added: [IPAddress]
    public var removed: [IPAddress]
    public var ttl: UInt32
    public var health: NameState.Health
    public var problem: String?
}

/// The rules of a refresh, without I/O: given a name's state and what DNS said, the new
/// state, the claims on set elements, and what changed.
struct RefreshRules {
    let policy: WatchedPolicy
    /// How soon a failed name is asked again: its TTL, but at most this.
    static let maxRetry: Double = 30

    /// `result` is the resolver's outcome for `state.name`. Returns the claims as
    /// (address, until) pairs: an address keeps its set element until `until`.
    func apply(_ result: NameResolution, to state: inout NameState, now: Double) -> (claims: [(IPAddress, Double)], change: NameChange?) {
        let before = state.addresses
        let oldHealth = state.health
        var claims: [(IPAddress, Double)] = []
        switch result.status {
        case .ok:
            let ttl = policy.clamp(result.ttl)
            state.health = .ok
            state.addresses = result.addresses
            state.ttl = ttl
            state.confirmed = now
            state.problem = nil
            state.nextRefresh = now + Double(ttl)
            // One TTL of use and one of grace: an address that leaves the answer stays that long.
            claims = result.addresses.map { ($0, now + 2 * Double(ttl)) }
        case .nxdomain, .nodata:
            // The name's servers answered: nothing is stale about it. Its addresses are
            // not renewed and go when their grace ends.
            state.health = .gone
            state.addresses = []
            state.problem = result.detail ?? result.status.rawValue.uppercased()
            state.nextRefresh = now + Double(policy.minTTL)
        default:
            // Serve-stale (RFC 8767): the last good answer stays while it was confirmed
            // less than max_ttl ago.
            let ttl = state.ttl == 0 ? policy.minTTL : state.ttl
            state.problem = result.detail ?? result.status.rawValue
            state.nextRefresh = now + min(Double(ttl), Self.maxRetry)
            if let confirmed = state.confirmed, !state.addresses.isEmpty, now - confirmed < Double(policy.maxTTL) {
                state.health = .stale
                let until = min(now + 2 * Double(ttl), confirmed + Double(policy.maxTTL))
                claims = state.addresses.map { ($0, until) }
            } else {
                state.health = state.addresses.isEmpty && oldHealth == .pending ? .pending : .gone
                state.addresses = []
            }
        }
        let added = state.addresses.filter { !before.contains($0) }
        let removed = before.filter { !state.addresses.contains($0) }
        let changed = !added.isEmpty || !removed.isEmpty || state.health != oldHealth
        let change = changed ? NameChange(name: state.name, added: added, removed: removed, ttl: state.ttl,
                                          health: state.health, problem: state.problem) : nil
        return (claims, change)
    }
}
