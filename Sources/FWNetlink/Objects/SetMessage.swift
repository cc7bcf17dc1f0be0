import CNetfilter

/// NEWSET and NEWSETELEM: a set (named or anonymous) and its elements, in messages small
/// enough for netlink's 64 KiB attribute limit.
enum SetMessage {
    /// Elements per NEWSETELEM message; an IPv6 interval element is about 60 bytes.
    static let elementsPerMessage = 512
    /// nft's byte order for set keys: big endian (network order).
    static let bigEndian: UInt32 = 2

    static func add(_ batch: Batch, table: String, _ s: KernelSet) {
        let set = base(table: table, s)
        defer { nftnl_set_free(set) }
        nftnl_set_set_u32(set, attr(NFTNL_SET_KEY_TYPE), s.keyType.rawValue)
        nftnl_set_set_u32(set, attr(NFTNL_SET_KEY_LEN), s.keyLen)
        nftnl_set_set_u32(set, attr(NFTNL_SET_FLAGS), s.flags)
        if let size = s.descSize { nftnl_set_set_u32(set, attr(NFTNL_SET_DESC_SIZE), size) }
        let ud = Userdata.u32(bigEndian, type: UInt8(NFTNL_UDATA_SET_KEYBYTEORDER.rawValue))
        ud.withUnsafeBytes { _ = nftnl_set_set_data(set, attr(NFTNL_SET_USERDATA), $0.baseAddress, UInt32($0.count)) }
        let label = s.isAnonymous ? "anonymous set" : "set \(s.name)"
        batch.add(Int32(NFT_MSG_NEWSET.rawValue), flags: NLM_F_CREATE, label: label) { nftnl_set_nlmsg_build_payload($0, set) }

        var start = 0
        while start < s.elements.count {
            let end = min(start + elementsPerMessage, s.elements.count)
            let chunk = base(table: table, s)
            defer { nftnl_set_free(chunk) }
            for el in s.elements[start..<end] {
                let e = nftnl_set_elem_alloc()!
                el.key.withUnsafeBytes { _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                if el.intervalEnd { nftnl_set_elem_set_u32(e, attr(NFTNL_SET_ELEM_FLAGS), UInt32(NFT_SET_ELEM_INTERVAL_END.rawValue)) }
                nftnl_set_elem_add(chunk, e)
            }
            let what = s.isAnonymous ? "anonymous set" : "set \(s.name)"
            batch.add(Int32(NFT_MSG_NEWSETELEM.rawValue), flags: NLM_F_CREATE,
                      label: "elements \(start + 1)-\(end) of \(what)") { nftnl_set_elems_nlmsg_build_payload($0, chunk) }
            start = end
        }
    }

    private static func base(table: String, _ s: KernelSet) -> OpaquePointer {
        let set = nftnl_set_alloc()!
        nftnl_set_set_u32(set, attr(NFTNL_SET_FAMILY), UInt32(NFPROTO_INET))
        nftnl_set_set_str(set, attr(NFTNL_SET_TABLE), table)
        nftnl_set_set_str(set, attr(NFTNL_SET_NAME), s.name)
        nftnl_set_set_u32(set, attr(NFTNL_SET_ID), s.id)
        return set
    }
}
