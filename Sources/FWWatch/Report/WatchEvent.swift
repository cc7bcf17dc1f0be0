import FWPolicy

/// What watch reports as it runs: a name's answer changed, or something worth a line.
public enum WatchEvent: Sendable {
    case change(NameChange)
    case notice(String)
    case warning(String)
    /// A summary (SIGUSR1, or the end of `--once`).
    case summary(WatchSummary)
}

/// Where the events go; the CLI formats them as text or JSON lines.
public typealias WatchLog = @Sendable (WatchEvent) -> Void

/// The state of a running watch, for SIGUSR1, `fwctl status` and `--once`.
public struct WatchSummary: Sendable, Codable {
    public struct Name: Sendable, Codable {
        public var name: String
        public var health: NameState.Health
        public var addresses: [String]
        public var ttl: UInt32
        /// Seconds since the answer was last confirmed; nil if never.
        public var confirmedAgo: Int?
        /// Seconds until the next refresh.
        public var nextRefreshIn: Int
        public var problem: String?

        enum CodingKeys: String, CodingKey {
            case name, health, addresses, ttl, problem
            case confirmedAgo = "confirmed_ago_s", nextRefreshIn = "next_refresh_in_s"
        }
    }

    public struct Filter: Sendable, Codable {
        public var listening: [String]
        public var forwarded: Int
        public var refused: Int
        public var malformed: Int
        public var failed: Int
    }

    public var table: String
    public var policySHA256: String
    public var pid: Int32
    /// UTC, ISO 8601.
    public var writtenAt: String
    public var refreshes: Int
    public var batches: Int
    /// Elements watch keeps in the kernel.
    public var elements: Int
    /// How timeouts are renewed: update, replace, or unverified (not needed yet).
    public var renewMode: String
    public var names: [Name]
    public var filter: Filter?
    /// The last round of refreshes: how many names, and what it cost.
    public var lastRound: Round?

    public struct Round: Sendable, Codable {
        public var names: Int
        public var wallMs: Double
        /// User + system CPU time of this process during the round (resolving, parsing,
        /// the transaction), from getrusage.
        public var cpuMs: Double
        enum CodingKeys: String, CodingKey { case names, wallMs = "wall_ms", cpuMs = "cpu_ms" }
    }

    enum CodingKeys: String, CodingKey {
        case table, pid, refreshes, batches, elements, names, filter
        case lastRound = "last_round"
        case policySHA256 = "policy_sha256", writtenAt = "written_at", renewMode = "renew_mode"
    }

    /// The text for a person: one line per name, problems first.
    public var text: String {
        var lines = ["watch: table inet \(table), policy sha256 \(policySHA256.prefix(12)), \(names.count) name(s), \(elements) element(s), \(refreshes) refresh(es), \(batches) batch(es), renew mode \(renewMode)"]
        if let r = lastRound {
            lines.append(String(format: "last round: %d name(s) in %.1f ms, %.1f ms CPU", r.names, r.wallMs, r.cpuMs))
        }
        if let f = filter {
            lines.append("dns filter on \(f.listening.joined(separator: ", ")): \(f.forwarded) forwarded, \(f.refused) refused (NXDOMAIN), \(f.malformed) malformed, \(f.failed) upstream failures")
        }
        let order: [NameState.Health] = [.stale, .gone, .pending, .ok]
        for n in names.sorted(by: { (order.firstIndex(of: $0.health)!, $0.name) < (order.firstIndex(of: $1.health)!, $1.name) }) {
            let addresses = n.addresses.isEmpty ? "-" : n.addresses.joined(separator: " ")
            var line = "  \(n.health.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)) \(n.name) ttl \(n.ttl)s next in \(n.nextRefreshIn)s: \(addresses)"
            if let p = n.problem { line += " (\(p))" }
            lines.append(line)
        }
        return lines.joined(separator: "\n")
    }
}
