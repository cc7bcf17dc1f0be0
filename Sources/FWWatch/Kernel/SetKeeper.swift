import FWNetlink
import FWPolicy

/// Writes the book's elements to the kernel's names sets, one transaction per commit.
///
/// Renewing an element's timeout: Linux 6.10 and later take a new timeout when an element
/// is added again; older kernels keep the old one. The first renewal is read back to find
/// out; where the kernel kept the old timeout, renewals from then on delete and re-add the
/// element in the same transaction (atomic: no packet sees the set without it).
final class SetKeeper {
    enum RenewMode: String { case unverified, update, replace }

    private let sets: LiveSets
    private(set) var book = ElementBook()
    private(set) var mode: RenewMode
    private(set) var batches = 0
    private let notice: (String) -> Void

    init(table: String, forceReplace: Bool, notice: @escaping (String) -> Void) throws(NetlinkError) {
        sets = try LiveSets(table: table)
        mode = forceReplace ? .replace : .unverified
        self.notice = notice
    }

    var table: String { sets.table }

    /// The table's comment, or nil when the table is gone (`fwctl reset`).
    func tableComment() throws(NetlinkError) -> String?? {
        guard let t = try sets.read(sets: []) else { return nil }
        return .some(t.comment)
    }

    /// Reads the sets as the kernel has them and forgets every claim: after an `apply`
    /// replaced the table, or at start-up. Returns the sets that exist; nil: no table.
    func load(_ names: [String], now: Double) throws(NetlinkError) -> Set<String>? {
        guard let live = try sets.read(sets: names) else { return nil }
        book.load(elements(live), now: now)
        return Set(live.elements.keys)
    }

    func claim(_ key: ElementKey, by name: String, until: Double) {
        book.claim(key, by: name, until: until)
    }

    /// Writes what the book says must change; returns how many elements were written.
    /// A refused batch (an element expired between the read and the write, in replace
    /// mode) is retried once against a fresh read of the kernel's elements.
    @discardableResult
    func commit(now: Double, unclaimedGrace: Double?, only: [ElementKey]? = nil) throws(NetlinkError) -> Int {
        if only == nil { book.expire(now: now) }
        let pending = book.pending(now: now, unclaimedGrace: unclaimedGrace, only: only)
        guard !pending.isEmpty else { return 0 }
        do {
            try write(pending)
        } catch .refused(_, let e) where e == ENOENT_ {
            try reread(now: now)
            try write(book.pending(now: now, unclaimedGrace: unclaimedGrace, only: only))
        }
        if mode == .unverified, let probe = pending.first(where: { $0.exists }) {
            try verifyRenewal(probe, pending: pending)
        }
        for p in pending { book.wrote(p.key, deadline: now + p.timeout) }
        return pending.count
    }

    private func write(_ pending: [(key: ElementKey, timeout: Double, exists: Bool)]) throws(NetlinkError) {
        try sets.put(pending.map { p in
            ElementPut(set: p.key.set, address: p.key.address, timeoutMs: UInt64(max(1, (p.timeout * 1000).rounded(.up))),
                       replace: mode == .replace && p.exists)
        })
        batches += 1
    }

    /// Reads back one renewed element: a kernel that renewed it reports the new expiry.
    private func verifyRenewal(_ probe: (key: ElementKey, timeout: Double, exists: Bool),
                               pending: [(key: ElementKey, timeout: Double, exists: Bool)]) throws(NetlinkError) {
        let live = try sets.read(sets: [probe.key.set])?.elements[probe.key.set] ?? []
        guard let element = live.first(where: { $0.address == probe.key.address }) else { return }
        let wantedMs = probe.timeout * 1000
        // What is left of it, not its timeout: a kernel may take a timeout and keep the old
        // expiry.
        if element.timeoutMs != nil, let left = element.expiresMs, abs(Double(left) - wantedMs) <= 1500 {
            mode = .update
            return
        }
        mode = .replace
        notice("this kernel keeps an element's old timeout when it is added again: renewing by delete and re-add in one transaction")
        try write(pending)
    }

    /// Takes the kernel's view of which elements exist, keeping the claims.
    private func reread(now: Double) throws(NetlinkError) {
        let names = Array(Set(book.entries.keys.map(\.set)))
        guard let live = try sets.read(sets: names) else { return }
        var fresh = ElementBook()
        fresh.load(elements(live), now: now)
        for (key, entry) in book.entries {
            for (name, until) in entry.claims { fresh.claim(key, by: name, until: until) }
        }
        book = fresh
    }

    private func elements(_ live: LiveTable) -> [(ElementKey, expiresIn: Double?)] {
        live.elements.flatMap { set, list in
            list.map { e in
                (ElementKey(set: set, address: e.address),
                 expiresIn: e.timeoutMs == nil ? nil : Double(e.expiresMs ?? 0) / 1000)
            }
        }
    }
}

#if canImport(Glibc)
import Glibc
private let ENOENT_ = ENOENT
#endif
