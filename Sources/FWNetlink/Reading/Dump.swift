import CNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// fwctl's table as the kernel dumps it: plain values copied out of libnftnl objects, so
/// no libnftnl object outlives the function that parsed it.
struct TableDump {
    struct Chain {
        var name: String
        /// Present on base chains only.
        var hook: UInt32?
        var priority: Int32
        var policy: UInt32?
        var type: String?
        var comment: String?
    }

    struct Set {
        var name: String
        var flags: UInt32
        var keyType: UInt32
        var keyLen: UInt32
        var elements: [Element]
        var isAnonymous: Bool { flags & SetFlag.anonymous != 0 }
    }

    struct Element {
        var key: [UInt8]
        /// NFT_SET_ELEM_INTERVAL_END and friends.
        var flags: UInt32
        /// Set only by concatenated ranges (NFTNL_SET_ELEM_KEY_END): an explicit last key.
        var keyEnd: [UInt8]?
        /// The element's own timeout and the time it has left, in ms; nil when it has none
        /// (a permanent element, as `apply` writes them).
        var timeoutMs: UInt64? = nil
        var expiresMs: UInt64? = nil
        var isIntervalEnd: Bool { flags & UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue) != 0 }
    }

    struct Rule {
        var chain: String
        var exprs: [ReadExpr]
        var comment: String?
        /// Set (with `exprs` empty) when libnftnl could not parse the rule: what to show.
        var unparsed: String?
    }

    var name: String
    var comment: String?
    /// NFT_TABLE_F_DORMANT (1) and friends; fwctl sets none.
    var flags: UInt32 = 0
    var chains: [Chain] = []
    var sets: [Set] = []
    /// In the kernel's order: chain by chain, each chain's rules in their position.
    var rules: [Rule] = []
}

/// The NFT_MSG_GET* requests and the parsing of their replies.
enum Dump {
    static let family = UInt16(NFPROTO_INET)

    /// Everything in `table inet NAME`, or nil when the table does not exist.
    static func table(_ name: String, socket: NetlinkSocket) throws(NetlinkError) -> TableDump? {
        guard var dump = try tableObject(name, socket: socket) else { return nil }
        dump.chains = try chains(name, socket: socket)
        dump.sets = try sets(name, socket: socket)
        for i in dump.sets.indices {
            dump.sets[i].elements = try elements(table: name, set: dump.sets[i].name, socket: socket)
        }
        dump.rules = try rules(name, socket: socket)
        return dump
    }

    static func tableObject(_ name: String, socket: NetlinkSocket) throws(NetlinkError) -> TableDump? {
        let t = nftnl_table_alloc()!
        defer { nftnl_table_free(t) }
        nftnl_table_set_str(t, attr(NFTNL_TABLE_NAME), name)
        let seq = socket.allocateSeq()
        // A single GET (not a dump) answers with the table and an ACK, or ENOENT.
        let msg = Kernel.request(Int32(NFT_MSG_GETTABLE.rawValue), family: family, flags: NLM_F_ACK, seq: seq) {
            nftnl_table_nlmsg_build_payload($0, t)
        }
        for reply in try socket.dump(msg, seq: seq, untilFirstReply: true) {
            if let table = try decodeTable(reply, name: name) { return table }
        }
        return nil
    }

    static func chains(_ table: String, socket: NetlinkSocket) throws(NetlinkError) -> [TableDump.Chain] {
        let filter = nftnl_chain_alloc()!
        defer { nftnl_chain_free(filter) }
        nftnl_chain_set_str(filter, attr(NFTNL_CHAIN_TABLE), table)
        var out: [TableDump.Chain] = []
        for reply in try list(Int32(NFT_MSG_GETCHAIN.rawValue), socket: socket, payload: { nftnl_chain_nlmsg_build_payload($0, filter) }) {
            if let chain = try decodeChain(reply, table: table) { out.append(chain) }
        }
        return out
    }

    static func sets(_ table: String, socket: NetlinkSocket) throws(NetlinkError) -> [TableDump.Set] {
        let filter = nftnl_set_alloc()!
        defer { nftnl_set_free(filter) }
        nftnl_set_set_str(filter, attr(NFTNL_SET_TABLE), table)
        var out: [TableDump.Set] = []
        for reply in try list(Int32(NFT_MSG_GETSET.rawValue), socket: socket, payload: { nftnl_set_nlmsg_build_payload($0, filter) }) {
            if let set = try decodeSet(reply, table: table) { out.append(set) }
        }
        return out
    }

    /// GETSETELEM works the same for named and anonymous sets (by name).
    static func elements(table: String, set name: String, socket: NetlinkSocket) throws(NetlinkError) -> [TableDump.Element] {
        let filter = nftnl_set_alloc()!
        defer { nftnl_set_free(filter) }
        nftnl_set_set_str(filter, attr(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(filter, attr(NFTNL_SET_NAME), name)
        let replies = try list(Int32(NFT_MSG_GETSETELEM.rawValue), socket: socket, payload: { nftnl_set_elems_nlmsg_build_payload($0, filter) })
        return try decodeElements(replies, set: name)
    }

    static func rules(_ table: String, socket: NetlinkSocket) throws(NetlinkError) -> [TableDump.Rule] {
        let filter = nftnl_rule_alloc()!
        defer { nftnl_rule_free(filter) }
        nftnl_rule_set_str(filter, attr(NFTNL_RULE_TABLE), table)
        var out: [TableDump.Rule] = []
        for reply in try list(Int32(NFT_MSG_GETRULE.rawValue), socket: socket, payload: { nftnl_rule_nlmsg_build_payload($0, filter) }) {
            if let rule = decodeRule(reply, table: table) { out.append(rule) }
        }
        return out
    }

    // MARK: - One reply message each: the bytes the kernel sent, to plain values

    /// The table of a GETTABLE reply; nil when the reply is about another table or family.
    static func decodeTable(_ reply: NetlinkMessage, name: String) throws(NetlinkError) -> TableDump? {
        let parsed = nftnl_table_alloc()!
        defer { nftnl_table_free(parsed) }
        guard reply.withHeader({ nftnl_table_nlmsg_parse($0, parsed) }) >= 0 else {
            throw .system("netlink: cannot parse the kernel's answer for table inet \(name)")
        }
        guard string(nftnl_table_get_str(parsed, attr(NFTNL_TABLE_NAME))) == name,
              nftnl_table_get_u32(parsed, attr(NFTNL_TABLE_FAMILY)) == UInt32(family) else { return nil }
        let ud = data(nftnl_table_is_set(parsed, attr(NFTNL_TABLE_USERDATA))) { nftnl_table_get_data(parsed, attr(NFTNL_TABLE_USERDATA), $0) }
        return TableDump(name: name, comment: Userdata.string(ud, type: UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue)),
                         flags: nftnl_table_get_u32(parsed, attr(NFTNL_TABLE_FLAGS)))
    }

    /// A chain of a GETCHAIN dump; nil when it belongs to another table or family.
    static func decodeChain(_ reply: NetlinkMessage, table: String) throws(NetlinkError) -> TableDump.Chain? {
        let c = nftnl_chain_alloc()!
        defer { nftnl_chain_free(c) }
        guard reply.withHeader({ nftnl_chain_nlmsg_parse($0, c) }) >= 0 else {
            throw .system("netlink: cannot parse a chain of table inet \(table)")
        }
        // The kernel may not filter a chain dump by table: filter here too.
        guard string(nftnl_chain_get_str(c, attr(NFTNL_CHAIN_TABLE))) == table,
              nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_FAMILY)) == UInt32(family),
              let name = string(nftnl_chain_get_str(c, attr(NFTNL_CHAIN_NAME))) else { return nil }
        let base = nftnl_chain_is_set(c, attr(NFTNL_CHAIN_HOOKNUM))
        let ud = data(nftnl_chain_is_set(c, attr(NFTNL_CHAIN_USERDATA))) { nftnl_chain_get_data(c, attr(NFTNL_CHAIN_USERDATA), $0) }
        return TableDump.Chain(
            name: name,
            hook: base ? nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_HOOKNUM)) : nil,
            priority: nftnl_chain_get_s32(c, attr(NFTNL_CHAIN_PRIO)),
            policy: nftnl_chain_is_set(c, attr(NFTNL_CHAIN_POLICY)) ? nftnl_chain_get_u32(c, attr(NFTNL_CHAIN_POLICY)) : nil,
            type: nftnl_chain_is_set(c, attr(NFTNL_CHAIN_TYPE)) ? string(nftnl_chain_get_str(c, attr(NFTNL_CHAIN_TYPE))) : nil,
            comment: Userdata.string(ud, type: UInt8(NFTNL_UDATA_CHAIN_COMMENT.rawValue)))
    }

    /// A set of a GETSET dump (without its elements); nil when it belongs to another table
    /// or family.
    static func decodeSet(_ reply: NetlinkMessage, table: String) throws(NetlinkError) -> TableDump.Set? {
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        guard reply.withHeader({ nftnl_set_nlmsg_parse($0, s) }) >= 0 else {
            throw .system("netlink: cannot parse a set of table inet \(table)")
        }
        guard string(nftnl_set_get_str(s, attr(NFTNL_SET_TABLE))) == table,
              nftnl_set_get_u32(s, attr(NFTNL_SET_FAMILY)) == UInt32(family),
              let name = string(nftnl_set_get_str(s, attr(NFTNL_SET_NAME))) else { return nil }
        return TableDump.Set(name: name, flags: nftnl_set_get_u32(s, attr(NFTNL_SET_FLAGS)),
                             keyType: nftnl_set_get_u32(s, attr(NFTNL_SET_KEY_TYPE)),
                             keyLen: nftnl_set_get_u32(s, attr(NFTNL_SET_KEY_LEN)), elements: [])
    }

    /// The elements of every reply of one set's GETSETELEM dump.
    static func decodeElements(_ replies: [NetlinkMessage], set name: String) throws(NetlinkError) -> [TableDump.Element] {
        // One set object collects the elements of every reply of the dump.
        let s = nftnl_set_alloc()!
        defer { nftnl_set_free(s) }
        for reply in replies {
            guard reply.withHeader({ nftnl_set_elems_nlmsg_parse($0, s) }) >= 0 else {
                throw .system("netlink: cannot parse the elements of set \(name)")
            }
        }
        guard let iter = nftnl_set_elems_iter_create(s) else { return [] }
        defer { nftnl_set_elems_iter_destroy(iter) }
        var out: [TableDump.Element] = []
        while let e = nftnl_set_elems_iter_next(iter) {
            let key = data(nftnl_set_elem_is_set(e, attr(NFTNL_SET_ELEM_KEY))) { nftnl_set_elem_get(e, attr(NFTNL_SET_ELEM_KEY), $0) }
            let end: [UInt8]? = nftnl_set_elem_is_set(e, attr(NFTNL_SET_ELEM_KEY_END))
                ? data(true) { nftnl_set_elem_get(e, attr(NFTNL_SET_ELEM_KEY_END), $0) } : nil
            let flags = nftnl_set_elem_is_set(e, attr(NFTNL_SET_ELEM_FLAGS)) ? nftnl_set_elem_get_u32(e, attr(NFTNL_SET_ELEM_FLAGS)) : 0
            let timeout = nftnl_set_elem_is_set(e, attr(NFTNL_SET_ELEM_TIMEOUT)) ? nftnl_set_elem_get_u64(e, attr(NFTNL_SET_ELEM_TIMEOUT)) : nil
            let expires = nftnl_set_elem_is_set(e, attr(NFTNL_SET_ELEM_EXPIRATION)) ? nftnl_set_elem_get_u64(e, attr(NFTNL_SET_ELEM_EXPIRATION)) : nil
            out.append(TableDump.Element(key: key, flags: flags, keyEnd: end, timeoutMs: timeout, expiresMs: expires))
        }
        return out
    }

    /// A rule of a GETRULE dump; nil when it belongs to another table or family. A rule
    /// libnftnl cannot parse is kept, unparsed.
    static func decodeRule(_ reply: NetlinkMessage, table: String) -> TableDump.Rule? {
        let r = nftnl_rule_alloc()!
        defer { nftnl_rule_free(r) }
        guard reply.withHeader({ nftnl_rule_nlmsg_parse($0, r) }) >= 0 else {
            // libnftnl refuses a rule with an expression it does not know. The rule is
            // still there, so it must show: take table and chain from the raw message.
            guard let t = Kernel.attribute(reply, type: UInt16(NFTA_RULE_TABLE.rawValue)).flatMap(cString), t == table,
                  let chain = Kernel.attribute(reply, type: UInt16(NFTA_RULE_CHAIN.rawValue)).flatMap(cString) else { return nil }
            let handle = Kernel.attribute(reply, type: UInt16(NFTA_RULE_HANDLE.rawValue))
                .flatMap { $0.count == 8 ? $0.reduce(UInt64(0)) { $0 << 8 | UInt64($1) } : nil }
            return TableDump.Rule(chain: chain, exprs: [], comment: nil,
                                  unparsed: "[ a rule libnftnl cannot parse\(handle.map { ", handle \($0)" } ?? "") ]")
        }
        guard string(nftnl_rule_get_str(r, attr(NFTNL_RULE_TABLE))) == table,
              nftnl_rule_get_u32(r, attr(NFTNL_RULE_FAMILY)) == UInt32(family),
              let chain = string(nftnl_rule_get_str(r, attr(NFTNL_RULE_CHAIN))) else { return nil }
        var exprs: [ReadExpr] = []
        if let iter = nftnl_expr_iter_create(r) {
            while let e = nftnl_expr_iter_next(iter) { exprs.append(ReadExpr(e)) }
            nftnl_expr_iter_destroy(iter)
        }
        let ud = data(nftnl_rule_is_set(r, attr(NFTNL_RULE_USERDATA))) { nftnl_rule_get_data(r, attr(NFTNL_RULE_USERDATA), $0) }
        return TableDump.Rule(chain: chain, exprs: exprs,
                              comment: Userdata.string(ud, type: UInt8(NFTNL_UDATA_RULE_COMMENT.rawValue)), unparsed: nil)
    }

    /// A dump request (NLM_F_DUMP) of one object type in the inet family.
    static func list(_ type: Int32, socket: NetlinkSocket,
                     payload: (UnsafeMutablePointer<nlmsghdr>) -> Void) throws(NetlinkError) -> [NetlinkMessage] {
        let seq = socket.allocateSeq()
        return try socket.dump(Kernel.request(type, family: family, flags: NLM_F_DUMP, seq: seq, payload: payload), seq: seq)
    }

    static func string(_ p: UnsafePointer<CChar>?) -> String? { p.map { String(cString: $0) } }

    /// A NUL-terminated attribute value (from a raw message).
    static func cString(_ bytes: [UInt8]) -> String? {
        guard let end = bytes.firstIndex(of: 0) else { return nil }
        return String(decoding: bytes[..<end], as: UTF8.self)
    }

    /// Copies a libnftnl binary attribute; empty when absent.
    static func data(_ present: Bool, _ get: (UnsafeMutablePointer<UInt32>) -> UnsafeRawPointer?) -> [UInt8] {
        guard present else { return [] }
        var len: UInt32 = 0
        guard let p = get(&len), len > 0 else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
    }
}

extension Userdata {
    /// The string record of `type` in nft's userdata (TLV: type, length, value), without
    /// its terminating NUL; nil when there is none or the records are malformed.
    static func string(_ bytes: [UInt8], type: UInt8) -> String? {
        var i = 0
        while i + 2 <= bytes.count {
            let t = bytes[i], len = Int(bytes[i + 1])
            guard i + 2 + len <= bytes.count else { return nil }
            if t == type {
                let value = bytes[(i + 2)..<(i + 2 + len)]
                return String(decoding: value.prefix { $0 != 0 }, as: UTF8.self)
            }
            i += 2 + len
        }
        return nil
    }
}
