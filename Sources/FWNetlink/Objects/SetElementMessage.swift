import CNetfilter
import FWPolicy

/// NEWSETELEM / DELSETELEM for single addresses in an existing named set, with a
/// per-element timeout: what `fwctl watch` sends, never a whole set.
enum SetElementMessage {
    /// One message per set and verb; `SetMessage.elementsPerMessage` bounds each.
    static func add(_ batch: Batch, table: String, set: String, _ elements: [(IPAddress, timeoutMs: UInt64)]) {
        build(batch, table: table, set: set, elements.map { ($0.0, Optional($0.timeoutMs)) },
              type: Int32(NFT_MSG_NEWSETELEM.rawValue), flags: NLM_F_CREATE, verb: "adding")
    }

    static func delete(_ batch: Batch, table: String, set: String, _ addresses: [IPAddress]) {
        build(batch, table: table, set: set, addresses.map { ($0, nil) },
              type: Int32(NFT_MSG_DELSETELEM.rawValue), flags: 0, verb: "deleting")
    }

    private static func build(_ batch: Batch, table: String, set: String, _ elements: [(IPAddress, UInt64?)],
                              type: Int32, flags: Int32, verb: String) {
        var start = 0
        while start < elements.count {
            let end = min(start + SetMessage.elementsPerMessage, elements.count)
            let s = nftnl_set_alloc()!
            defer { nftnl_set_free(s) }
            nftnl_set_set_u32(s, attr(NFTNL_SET_FAMILY), UInt32(NFPROTO_INET))
            nftnl_set_set_str(s, attr(NFTNL_SET_TABLE), table)
            nftnl_set_set_str(s, attr(NFTNL_SET_NAME), set)
            for (address, timeout) in elements[start..<end] {
                let e = nftnl_set_elem_alloc()!
                address.bytes.withUnsafeBytes { _ = nftnl_set_elem_set(e, attr(NFTNL_SET_ELEM_KEY), $0.baseAddress, UInt32($0.count)) }
                if let timeout {
                    nftnl_set_elem_set_u64(e, attr(NFTNL_SET_ELEM_TIMEOUT), timeout)
                    // The expiry too: a kernel that updates an existing element (6.10 and
                    // later) restarts its clock only when told the expiry; with the same
                    // timeout alone the old expiry stays and the element runs out.
                    nftnl_set_elem_set_u64(e, attr(NFTNL_SET_ELEM_EXPIRATION), timeout)
                }
                nftnl_set_elem_add(s, e)
            }
            batch.add(type, flags: flags, label: "\(verb) elements \(start + 1)-\(end) of set \(set)") {
                nftnl_set_elems_nlmsg_build_payload($0, s)
            }
            start = end
        }
    }
}
