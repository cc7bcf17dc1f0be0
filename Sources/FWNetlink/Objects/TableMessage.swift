import CNetfilter
import FWRuleset

/// NEWTABLE / DELTABLE for fwctl's inet table, with its comment in userdata.
enum TableMessage {
    static func add(_ batch: Batch, name: String, comment: String?, type: Int32 = Int32(NFT_MSG_NEWTABLE.rawValue),
                    flags: Int32 = NLM_F_CREATE) {
        let t = nftnl_table_alloc()!
        defer { nftnl_table_free(t) }
        nftnl_table_set_u32(t, attr(NFTNL_TABLE_FAMILY), UInt32(NFPROTO_INET))
        nftnl_table_set_str(t, attr(NFTNL_TABLE_NAME), name)
        if let c = comment, let ud = Userdata.comment(c, type: UInt8(NFTNL_UDATA_TABLE_COMMENT.rawValue)) {
            ud.withUnsafeBytes { _ = nftnl_table_set_data(t, attr(NFTNL_TABLE_USERDATA), $0.baseAddress, UInt32($0.count)) }
        }
        let verb = type == Int32(NFT_MSG_DELTABLE.rawValue) ? "deleting" : "creating"
        batch.add(type, flags: flags, label: "table inet \(name) (\(verb))") { nftnl_table_nlmsg_build_payload($0, t) }
    }

    static func delete(_ batch: Batch, name: String) {
        add(batch, name: name, comment: nil, type: Int32(NFT_MSG_DELTABLE.rawValue), flags: 0)
    }
}

/// nft's userdata: type-length-value records (libnftnl's udata).
enum Userdata {
    /// A comment record, NUL-terminated as nft writes it; nil if too long for userdata.
    static func comment(_ text: String, type: UInt8) -> [UInt8]? {
        let value = Array(text.utf8) + [0]
        guard value.count <= 255 else { return nil }
        return [type, UInt8(value.count)] + value
    }

    static func u32(_ v: UInt32, type: UInt8) -> [UInt8] {
        [type, 4] + withUnsafeBytes(of: v) { Array($0) }
    }
}
