import FWPolicy

/// An element of a names set as the kernel holds it now.
public struct LiveElement: Sendable, Equatable {
    public var address: IPAddress
    /// The element's timeout in ms; nil for a permanent element (as `apply` writes them).
    public var timeoutMs: UInt64?
    /// What is left of it, in ms.
    public var expiresMs: UInt64?

    public init(address: IPAddress, timeoutMs: UInt64?, expiresMs: UInt64?) {
        self.address = address
        self.timeoutMs = timeoutMs
        self.expiresMs = expiresMs
    }
}

/// What `watch` reads of fwctl's table: its comment (the apply record) and the elements
/// of the sets it keeps.
public struct LiveTable: Sendable {
    public var comment: String?
    public var elements: [String: [LiveElement]]
}

/// One address to add or renew in a set, with the time it may stay.
public struct ElementPut: Sendable, Equatable {
    public var set: String
    public var address: IPAddress
    public var timeoutMs: UInt64
    /// Delete the element first, in the same transaction: for kernels that keep an existing
    /// element's old timeout when it is added again (before Linux 6.10 or so). Only for
    /// elements that exist, or the kernel refuses the whole batch (ENOENT).
    public var replace: Bool

    public init(set: String, address: IPAddress, timeoutMs: UInt64, replace: Bool = false) {
        self.set = set
        self.address = address
        self.timeoutMs = timeoutMs
        self.replace = replace
    }
}

/// Element-level access to fwctl's sets for `watch`: one netlink socket, used from one
/// thread at a time (the caller serializes). Everything happens in the namespace of the
/// thread that made it.
public final class LiveSets {
    public let table: String
    private let socket: NetlinkSocket

    public init(table: String) throws(NetlinkError) {
        self.table = table
        socket = try NetlinkSocket()
    }

    /// The table's comment and the elements of `sets` (those that exist); nil when the
    /// table does not exist.
    public func read(sets: [String]) throws(NetlinkError) -> LiveTable? {
        guard let t = try Dump.tableObject(table, socket: socket) else { return nil }
        let existing = Set(try Dump.sets(table, socket: socket).map(\.name))
        var elements: [String: [LiveElement]] = [:]
        for name in sets where existing.contains(name) {
            elements[name] = try Dump.elements(table: table, set: name, socket: socket).compactMap { e in
                IPAddress(bytes: e.key).map { LiveElement(address: $0, timeoutMs: e.timeoutMs, expiresMs: e.expiresMs) }
            }
        }
        return LiveTable(comment: t.comment, elements: elements)
    }

    /// Adds or renews every element in one transaction: all of it happens, or none.
    public func put(_ puts: [ElementPut]) throws(NetlinkError) {
        guard !puts.isEmpty else { return }
        let batch = Batch(socket: socket, genid: nil)
        var order: [String] = []
        var bySet: [String: [ElementPut]] = [:]
        for p in puts {
            if bySet[p.set] == nil { order.append(p.set) }
            bySet[p.set, default: []].append(p)
        }
        for name in order {
            let list = bySet[name]!
            let replaced = list.filter(\.replace).map(\.address)
            if !replaced.isEmpty { SetElementMessage.delete(batch, table: table, set: name, replaced) }
            SetElementMessage.add(batch, table: table, set: name, list.map { ($0.address, timeoutMs: $0.timeoutMs) })
        }
        try batch.send(commit: true)
    }
}
