import FWPolicy

/// One element of one names set.
public struct ElementKey: Hashable, Sendable, Comparable {
    public var set: String
    public var address: IPAddress
    public static func < (a: Self, b: Self) -> Bool { a.set != b.set ? a.set < b.set : a.address < b.address }
}

/// What watch knows of every element it keeps: which names claim it, and until when.
/// An element's timeout in the kernel is its latest claim, so two names sharing an address
/// (a CDN) never shorten each other's time. Times are seconds on a monotonic clock.
struct ElementBook {
    struct Entry {
        /// name -> the time its claim runs out.
        var claims: [String: Double] = [:]
        /// When the kernel's element runs out as last written or read; nil: permanent
        /// (`apply` writes elements without a timeout).
        var kernelDeadline: Double?
        /// The element is in the kernel (written by watch, or read at a sync).
        var inKernel = false

        var latestClaim: Double? { claims.values.max() }
    }

    private(set) var entries: [ElementKey: Entry] = [:]

    /// Forgets everything and takes the kernel's elements as they are: the state after an
    /// `apply` or at start-up. `expires` nil marks a permanent element.
    mutating func load(_ elements: [(ElementKey, expiresIn: Double?)], now: Double) {
        entries = [:]
        for (key, expires) in elements {
            entries[key] = Entry(claims: [:], kernelDeadline: expires.map { now + $0 }, inKernel: true)
        }
    }

    /// Records that `name` wants `key` kept until `until`.
    mutating func claim(_ key: ElementKey, by name: String, until: Double) {
        entries[key, default: Entry()].claims[name] = until
    }

    /// What must be written so every element lives exactly as long as its latest claim:
    /// elements whose kernel deadline differs from it (new ones, renewed ones, permanent
    /// ones that now have claims), with the timeout to give. `unclaimedGrace`: permanent
    /// elements nobody claims any more get this long, then go.
    /// `only`: look at these elements alone (a DNS filter admission), not the whole book.
    func pending(now: Double, unclaimedGrace: Double?, only: [ElementKey]? = nil) -> [(key: ElementKey, timeout: Double, exists: Bool)] {
        var out: [(key: ElementKey, timeout: Double, exists: Bool)] = []
        let candidates: [(ElementKey, Entry)] = only.map { keys in keys.compactMap { k in entries[k].map { (k, $0) } } }
            ?? Array(entries)
        for (key, e) in candidates {
            let exists = e.inKernel && (e.kernelDeadline.map { $0 > now } ?? true)
            if let target = e.latestClaim {
                guard target > now else { continue }
                // Rewritten only when the deadline moves by more than a few milliseconds.
                if exists, let d = e.kernelDeadline, abs(d - target) < 0.005 { continue }
                out.append((key, target - now, exists))
            } else if exists, e.kernelDeadline == nil, let grace = unclaimedGrace {
                out.append((key, grace, true))
            }
        }
        return out.sorted { $0.key < $1.key }
    }

    /// After a committed write.
    mutating func wrote(_ key: ElementKey, deadline: Double) {
        entries[key, default: Entry()].kernelDeadline = deadline
        entries[key, default: Entry()].inKernel = true
    }

    /// Drops elements whose time in the kernel is over and claims that ran out.
    mutating func expire(now: Double) {
        for (key, e) in entries {
            if let d = e.kernelDeadline, d <= now {
                entries[key] = nil
                continue
            }
            entries[key]?.claims = e.claims.filter { $0.value > now }
        }
    }

    /// The time left for `name`'s claims in `set`, the longest, or nil.
    func remaining(_ keys: [ElementKey], now: Double) -> Double? {
        keys.compactMap { k in entries[k].flatMap { e in e.inKernel ? (e.kernelDeadline.map { $0 - now } ?? .infinity) : nil } }.min()
    }

    func deadline(_ key: ElementKey) -> Double? { entries[key]?.kernelDeadline }
    func contains(_ key: ElementKey) -> Bool { entries[key]?.inKernel ?? false }
    var count: Int { entries.count }
}
