import Dispatch
import FWNetlink
import FWPolicy
import FWResolve
import FWRuleset
import Foundation

/// `fwctl watch`: keeps the names sets true to DNS.
///
/// One thread runs the loop: it asks again for each name when its TTL runs out, and
/// writes what changed in one transaction per round. The DNS filter adds what its
/// clients were told through `admit`. Both go through one lock, so the book of elements
/// and the kernel never disagree. Every few seconds the table's comment is read: a new
/// apply (a new record, maybe a new policy) replaces the sets, and watch takes them over.
public final class Watcher: @unchecked Sendable {
    public struct Options: Sendable {
        /// The policy file as given on the command line.
        public var policyPath: String
        /// Reads and compiles a policy file; the CLI supplies it (it knows resolv.conf and users).
        public var load: @Sendable (String) throws -> WatchedPolicy
        public var log: WatchLog
        /// How often the table's comment is checked for a new apply.
        public var tableCheckInterval: Double = 2
        /// Renew by delete and re-add even where the kernel could update (tests use it to
        /// exercise the older kernels' way).
        public var forceReplace = false
        /// Where the summary is written after every round (for `fwctl status`); nil: nowhere.
        public var statePath: String?

        public init(policyPath: String, load: @escaping @Sendable (String) throws -> WatchedPolicy, log: @escaping WatchLog) {
            self.policyPath = policyPath
            self.load = load
            self.log = log
        }
    }

    public struct Failure: Error, CustomStringConvertible {
        public let description: String
    }

    private let options: Options
    private let condition = NSCondition()
    // Everything below is guarded by `condition`.
    private var policy: WatchedPolicy
    private var keeper: SetKeeper
    private var states: [String: NameState] = [:]
    private var tableComment: String?
    /// False after `fwctl reset` removed the table: nothing is written until it is back.
    private var tablePresent = true
    private var nextTableCheck: Double = 0
    private var stopped = false
    /// Permanent elements left by apply get their grace only after a full round, when
    /// every name has had its say.
    private var fullRoundDone = false
    private var refreshes = 0
    private var lastRound: WatchSummary.Round?
    private var filterStats: (() -> WatchSummary.Filter?)?
    /// Called (outside the lock) when a new policy changes the filter's settings.
    public var onPolicyChange: (@Sendable (WatchedPolicy) -> Void)?

    /// Reads the table and takes its sets over. Throws when the table does not exist.
    public init(policy: WatchedPolicy, options: Options) throws {
        self.options = options
        self.policy = policy
        do {
            keeper = try SetKeeper(table: policy.table, forceReplace: options.forceReplace) { options.log(.notice($0)) }
            guard case .some(let comment) = try keeper.tableComment() else {
                throw Failure(description: "table inet \(policy.table) does not exist: run fwctl apply first")
            }
            tableComment = comment
            try takeOver(now: Self.now())
        } catch let e as NetlinkError {
            throw Failure(description: "\(e)")
        }
    }

    /// Monotonic seconds.
    static func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

    public var current: WatchedPolicy {
        condition.lock(); defer { condition.unlock() }
        return policy
    }

    // MARK: - The loop

    /// Runs until `stop()`.
    public func run() {
        while true {
            condition.lock()
            if stopped { condition.unlock(); return }
            let now = Self.now()
            if now >= nextTableCheck { checkTable(now: now) }
            let due = states.values.filter { $0.nextRefresh <= now + 0.05 }.map(\.name).sorted()
            let resolver = resolver()
            condition.unlock()

            if !due.isEmpty {
                round(due, resolver: resolver)
                continue
            }
            condition.lock()
            if !stopped {
                let next = min(states.values.map(\.nextRefresh).min() ?? .infinity, nextTableCheck)
                let wait = max(0.01, min(next - Self.now(), 60))
                _ = condition.wait(until: Date(timeIntervalSinceNow: wait))
            }
            condition.unlock()
        }
    }

    /// One round over every name, then return: `fwctl watch --once`.
    public func runOnce() -> WatchSummary {
        condition.lock()
        let names = policy.names
        let resolver = resolver()
        condition.unlock()
        round(names, resolver: resolver)
        return summary()
    }

    /// Resolves `names` (outside the lock), then absorbs the answers; measured.
    private func round(_ names: [String], resolver: Resolver) {
        let start = Self.now(), cpu = Self.cpuSeconds()
        let resolution = resolver.resolve(names)
        condition.lock()
        absorb(resolution, now: Self.now())
        lastRound = WatchSummary.Round(names: names.count, wallMs: (Self.now() - start) * 1000, cpuMs: (Self.cpuSeconds() - cpu) * 1000)
        writeState()
        condition.unlock()
    }

    /// User + system CPU time of the whole process, in seconds.
    static func cpuSeconds() -> Double {
        var usage = rusage()
        getrusage(RUSAGE_SELF.rawValue, &usage)
        func s(_ t: timeval) -> Double { Double(t.tv_sec) + Double(t.tv_usec) / 1e6 }
        return s(usage.ru_utime) + s(usage.ru_stime)
    }

    public func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// Wakes the loop to ask every name again now (SIGHUP).
    public func refreshAll() {
        condition.lock()
        for name in Array(states.keys) { states[name]?.nextRefresh = 0 }
        condition.broadcast()
        condition.unlock()
    }

    private func resolver() -> Resolver {
        let dns = policy.policy.dns
        return Resolver(options: ResolverOptions(servers: policy.servers, timeoutMs: dns.timeoutMs, attempts: dns.attempts,
                                                 mark: DNSSettings.filterMark))
    }

    /// Under the lock: the round's answers into states, claims and one transaction.
    private func absorb(_ resolution: Resolution, now: Double) {
        let rules = RefreshRules(policy: policy)
        for result in resolution.results {
            guard var state = states[result.name] else { continue }
            let (claims, change) = rules.apply(result, to: &state, now: now)
            states[result.name] = state
            for (address, until) in claims {
                for set in policy.sets[result.name]?[address.family] ?? [] {
                    keeper.claim(ElementKey(set: set, address: address), by: result.name, until: until)
                }
            }
            if let change { options.log(.change(change)) }
            refreshes += 1
        }
        if !fullRoundDone && states.values.allSatisfy({ $0.health != .pending || $0.problem != nil }) {
            fullRoundDone = true
        }
        commit(now: now)
    }

    private func commit(now: Double, only: [ElementKey]? = nil) {
        guard tablePresent else { return }
        // An `apply` since the last look replaced the sets, maybe under a new policy:
        // claims made under the old one must not go into them. Take the table over
        // instead (every name is asked again at once).
        if let comment = try? keeper.tableComment(), comment != tableComment {
            checkTable(now: now)
            return
        }
        do {
            try keeper.commit(now: now, unclaimedGrace: fullRoundDone ? 2 * Double(policy.minTTL) : nil, only: only)
        } catch {
            options.log(.warning("the sets were not updated: \(error); trying again at the next table check"))
            nextTableCheck = 0
            // Everything is asked again soon: the claims of this round were not written.
            for name in Array(states.keys) {
                if let due = states[name]?.nextRefresh, due > now + 5 { states[name]?.nextRefresh = now + 5 }
            }
        }
    }

    // MARK: - Following apply

    /// Under the lock: reads the table's comment; a new one means `apply` ran.
    private func checkTable(now: Double) {
        nextTableCheck = now + options.tableCheckInterval
        let comment: String??
        do { comment = try keeper.tableComment() } catch {
            options.log(.warning("cannot read table inet \(policy.table): \(error)"))
            return
        }
        guard case .some(let c) = comment else {
            if tablePresent { options.log(.warning("table inet \(policy.table) is gone (fwctl reset?); waiting for it to come back")) }
            tablePresent = false
            tableComment = nil
            return
        }
        guard c != tableComment || !tablePresent else { return }
        tablePresent = true
        tableComment = c
        let record = c.flatMap(ApplyRecord.init(comment:))
        var newPolicy: WatchedPolicy?
        if let record, record.policySHA256 != policy.sha256 {
            for path in [record.policyPath, options.policyPath] {
                if let p = try? options.load(path), p.sha256 == record.policySHA256, p.table == policy.table {
                    newPolicy = p
                    break
                }
            }
            if newPolicy == nil {
                options.log(.warning("table inet \(policy.table) was applied from a policy (sha256 \(record.policySHA256.prefix(12))) that neither \(record.policyPath) nor \(options.policyPath) holds now; keeping the names of the current one"))
            }
        }
        if let newPolicy {
            policy = newPolicy
            options.log(.notice("following the new policy \(newPolicy.sha256.prefix(12)): \(newPolicy.names.count) name(s)"))
            if let hook = onPolicyChange {
                let p = newPolicy
                DispatchQueue.global().async { hook(p) }
            }
        } else {
            options.log(.notice("table inet \(policy.table) was applied again; taking its sets over"))
        }
        do { try takeOver(now: now) } catch {
            options.log(.warning("cannot read the sets of table inet \(policy.table): \(error)"))
        }
    }

    /// Under the lock (or in init): reads the sets and asks every name again at once.
    private func takeOver(now: Double) throws(NetlinkError) {
        guard let existing = try keeper.load(policy.setNames, now: now) else { return }
        let missing = Set(policy.setNames).subtracting(existing)
        if !missing.isEmpty {
            options.log(.warning("table inet \(policy.table) has no set \(missing.sorted().joined(separator: ", ")); names in it are not kept"))
            policy.sets = policy.sets.mapValues { $0.mapValues { $0.filter(existing.contains) } }
        }
        var fresh: [String: NameState] = [:]
        for name in policy.names {
            var s = states[name] ?? NameState(name: name)
            s.nextRefresh = 0
            fresh[name] = s
        }
        states = fresh
        fullRoundDone = false
        condition.broadcast()
    }

    // MARK: - The filter

    /// Whether the filter may answer `name`.
    public func allows(_ name: String) -> Bool {
        condition.lock(); defer { condition.unlock() }
        return policy.allows(name)
    }

    /// The filter got `addresses` for `name` with `ttl`: they enter the name's sets (one
    /// transaction) before this returns, so the client's first connection works. Nothing to
    /// do for names without sets (proxied or wildcard) or addresses with time to spare.
    public func admit(name: String, addresses: [IPAddress], ttl: UInt32?) {
        guard !addresses.isEmpty, let normalized = HostPattern.normalize(name) else { return }
        condition.lock(); defer { condition.unlock() }
        guard let sets = policy.sets[normalized] else { return }
        let now = Self.now()
        let clamped = Double(policy.clamp(ttl))
        var claimed: [ElementKey] = []
        for address in addresses {
            let keys = (sets[address.family] ?? []).map { ElementKey(set: $0, address: address) }
            // Enough time left for the client's whole TTL (the filter caps it at max_ttl):
            // no transaction on the query's path.
            if let left = keeper.book.remaining(keys, now: now), left >= clamped { continue }
            for key in keys { keeper.claim(key, by: normalized, until: now + 2 * clamped) }
            claimed += keys
        }
        // Only these elements: an admission must not cost a walk over the whole book.
        if !claimed.isEmpty { commit(now: now, only: claimed) }
    }

    public func setFilterStats(_ stats: @escaping () -> WatchSummary.Filter?) {
        condition.lock(); defer { condition.unlock() }
        filterStats = stats
    }

    // MARK: - Reporting

    public func summary() -> WatchSummary {
        condition.lock(); defer { condition.unlock() }
        return summaryLocked()
    }

    private func summaryLocked() -> WatchSummary {
        let now = Self.now()
        let names = states.values.sorted { $0.name < $1.name }.map { s in
            WatchSummary.Name(name: s.name, health: s.health, addresses: s.addresses.map(\.description), ttl: s.ttl,
                              confirmedAgo: s.confirmed.map { Int(now - $0) }, nextRefreshIn: max(0, Int(s.nextRefresh - now)),
                              problem: s.problem)
        }
        return WatchSummary(table: policy.table, policySHA256: policy.sha256, pid: getpid(), writtenAt: UTCTimestamp.now(),
                            refreshes: refreshes, batches: keeper.batches, elements: keeper.book.count,
                            renewMode: keeper.mode.rawValue, names: names, filter: filterStats?(), lastRound: lastRound)
    }

    private func writeState() {
        guard let path = options.statePath else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        guard let data = try? encoder.encode(summaryLocked()) else { return }
        let tmp = path + ".tmp"
        if FileManager.default.createFile(atPath: tmp, contents: data, attributes: [.posixPermissions: 0o644]) {
            rename(tmp, path)
        }
    }
}
