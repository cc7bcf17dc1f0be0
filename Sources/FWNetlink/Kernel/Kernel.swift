import CNetfilter
import FWPolicy
import FWRuleset
#if canImport(Glibc)
import Glibc
#endif

/// fwctl's table in the kernel: replace it atomically, check a replacement, remove it.
/// Everything happens in the calling thread's network namespace.
public enum Kernel {
    /// How often a batch is rebuilt when someone else changed the ruleset meanwhile.
    static let generationAttempts = 3

    /// Replaces fwctl's table in one transaction: add the table (a no-op if it exists),
    /// delete it, add it again with everything. The kernel applies all of it or none, so at
    /// no moment is the old table gone and the new one not there. `commit: false` is
    /// `apply --check`: the kernel validates the whole batch and aborts it.
    public static func apply(_ ruleset: Ruleset, commit: Bool = true) throws(NetlinkError) {
        let socket = try NetlinkSocket()
        for attempt in 1...generationAttempts {
            // The generation is read first: if the table appears or goes after the check
            // below, the kernel refuses the batch and the loop starts over.
            let genid = try generation(socket)
            let replace = try tableExists(ruleset.table.name, socket: socket)
            let batch = Batch(socket: socket, genid: genid)
            build(ruleset, into: batch, replacing: replace)
            do {
                try batch.send(commit: commit)
                return
            } catch .generationChanged where attempt < generationAttempts {
                continue
            }
        }
    }

    /// Whether this kernel speaks nf_tables (in the calling thread's namespace): a
    /// netlink socket opens and answers a generation request.
    public static func available() -> Bool {
        guard let socket = try? NetlinkSocket() else { return false }
        return (try? generation(socket)) != nil
    }

    /// Whether fwctl's table exists.
    public static func tableExists(_ name: String) throws(NetlinkError) -> Bool {
        try tableExists(name, socket: try NetlinkSocket())
    }

    /// Removes fwctl's table and nothing else; false when there was none.
    @discardableResult
    public static func reset(table: String) throws(NetlinkError) -> Bool {
        let socket = try NetlinkSocket()
        let existed = try tableExists(table, socket: socket)
        guard existed else { return false }
        let batch = Batch(socket: socket, genid: nil)
        TableMessage.delete(batch, name: table)
        try batch.send(commit: true)
        return true
    }

    /// The messages of one replace transaction, in the order the kernel needs them:
    /// chains before rules that jump to them, sets before rules that look them up.
    /// `replacing`: the table exists and is deleted first (add, delete, add). When it does
    /// not, the delete is left out: a committed table deletion makes the kernel hold the
    /// socket's close for milliseconds.
    static func build(_ r: Ruleset, into batch: Batch, replacing: Bool = true) {
        let t = r.table
        if replacing {
            TableMessage.add(batch, name: t.name, comment: nil)
            TableMessage.delete(batch, name: t.name)
        }
        TableMessage.add(batch, name: t.name, comment: t.comment)
        for c in t.chains { ChainMessage.add(batch, table: t.name, c) }
        var ids: [String: UInt32] = [:]
        for (i, s) in t.sets.enumerated() {
            let id = UInt32(i + 1)
            ids[s.name] = id
            SetMessage.add(batch, table: t.name, named(s, id: id))
        }
        var lowering = RuleLowering(namedSetIDs: ids, nextSetID: UInt32(t.sets.count))
        for c in t.chains {
            for (i, rule) in c.rules.enumerated() {
                let (exprs, anonymous) = lowering.lower(rule)
                for s in anonymous { SetMessage.add(batch, table: t.name, s) }
                RuleMessage.add(batch, table: t.name, chain: c.name, index: i, rule: rule, exprs: exprs)
            }
        }
    }

    static func named(_ s: NamedSet, id: UInt32) -> KernelSet {
        var flags: UInt32 = 0
        if s.flags.contains(.interval) { flags |= SetFlag.interval }
        if s.flags.contains(.timeout) { flags |= SetFlag.timeout }
        let v4 = s.keyType == .ipv4Addr
        // An interval set holds prefixes as start/end pairs; any other set one key per address.
        let elements = s.flags.contains(.interval) ? ElementEncoding.prefixes(s.elements) : ElementEncoding.addresses(s.elements)
        return KernelSet(name: s.name, id: id, keyType: v4 ? .ipv4Addr : .ipv6Addr, keyLen: v4 ? 4 : 16,
                         flags: flags, elements: elements, descSize: nil)
    }

    /// The ruleset generation id (NFT_MSG_GETGEN), which the batch carries so a concurrent
    /// change makes the kernel refuse it instead of being silently overwritten.
    static func generation(_ socket: NetlinkSocket) throws(NetlinkError) -> UInt32 {
        let seq = socket.allocateSeq()
        let replies = try socket.dump(request(Int32(NFT_MSG_GETGEN.rawValue), family: UInt16(AF_UNSPEC), flags: 0, seq: seq), seq: seq,
                                      untilFirstReply: true)
        for msg in replies {
            if let id = attribute(msg, type: UInt16(NFTA_GEN_ID.rawValue)), id.count == 4 {
                return id.withUnsafeBytes { UInt32(bigEndian: $0.load(as: UInt32.self)) }
            }
        }
        throw .system("netlink: the kernel did not report the ruleset generation")
    }

    static func tableExists(_ name: String, socket: NetlinkSocket) throws(NetlinkError) -> Bool {
        let seq = socket.allocateSeq()
        let t = nftnl_table_alloc()!
        defer { nftnl_table_free(t) }
        nftnl_table_set_str(t, attr(NFTNL_TABLE_NAME), name)
        let msg = request(Int32(NFT_MSG_GETTABLE.rawValue), family: UInt16(NFPROTO_INET), flags: NLM_F_ACK, seq: seq) {
            nftnl_table_nlmsg_build_payload($0, t)
        }
        return try !socket.dump(msg, seq: seq, untilFirstReply: true).isEmpty
    }

    /// A single request message (outside a batch).
    static func request(_ type: Int32, family: UInt16, flags: Int32, seq: UInt32,
                        payload: (UnsafeMutablePointer<nlmsghdr>) -> Void = { _ in }) -> [UInt8] {
        var buf = [UInt8](repeating: 0, count: 4096)
        let len = buf.withUnsafeMutableBytes { raw -> Int in
            let nlh = nftnl_nlmsg_build_hdr(raw.baseAddress!.assumingMemoryBound(to: CChar.self), UInt16(type), family, UInt16(flags), seq)!
            payload(nlh)
            return Int(nlh.pointee.nlmsg_len)
        }
        return Array(buf[0..<len])
    }

    /// The value of a top-level attribute after the nfgenmsg header.
    static func attribute(_ msg: NetlinkMessage, type: UInt16) -> [UInt8]? {
        var off = 16 + 4
        let b = msg.bytes
        while off + 4 <= b.count {
            let len = Int(UInt16(b[off]) | UInt16(b[off + 1]) << 8)
            let t = (UInt16(b[off + 2]) | UInt16(b[off + 3]) << 8) & 0x3fff
            guard len >= 4, off + len <= b.count else { return nil }
            if t == type { return Array(b[off + 4..<off + len]) }
            off += (len + 3) & ~3
        }
        return nil
    }
}
