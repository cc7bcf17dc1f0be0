import CNetfilter

/// `meta load KEY => reg 1`: packet metadata (interface names, protocol family, l4 protocol,
/// the uid owning the sending socket, the packet mark).
struct Meta: Equatable {
    static let name = "meta"
    enum Key: UInt32 {
        case mark = 3, skuid = 10, iifname = 6, oifname = 7, nfproto = 15, l4proto = 16
    }
    var key: UInt32
    var dreg = reg1

    init(_ key: Key) { self.key = key.rawValue }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_META_KEY), key)
        e.setU32(attr(NFTNL_EXPR_META_DREG), dreg)
        return e
    }

    init(_ e: OpaquePointer) {
        key = e.u32(attr(NFTNL_EXPR_META_KEY))
        dreg = e.has(attr(NFTNL_EXPR_META_DREG)) ? e.u32(attr(NFTNL_EXPR_META_DREG)) : 0
    }
}
