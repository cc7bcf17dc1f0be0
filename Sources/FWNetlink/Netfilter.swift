import CNetfilter

/// The kernel side of fwctl (netlink encode, apply, dump) arrives with the kernel issue.
/// For now this module proves the libnftnl + libmnl system-library target links.
public enum Netfilter {
    /// Builds and frees a libnftnl table object named `name`; true when libnftnl accepted it.
    public static func selfTest(tableName name: String) -> Bool {
        guard let t = nftnl_table_alloc() else { return false }
        defer { nftnl_table_free(t) }
        nftnl_table_set_u32(t, UInt16(NFTNL_TABLE_FAMILY.rawValue), UInt32(NFPROTO_INET))
        nftnl_table_set_str(t, UInt16(NFTNL_TABLE_NAME.rawValue), name)
        guard let got = nftnl_table_get_str(t, UInt16(NFTNL_TABLE_NAME.rawValue)) else { return false }
        // libmnl: the aligned size of a netlink message with no payload is its header.
        return String(cString: got) == name && mnl_nlmsg_size(0) == MemoryLayout<nlmsghdr>.size
    }
}
