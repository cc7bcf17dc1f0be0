import CNetfilter

/// `ct load state => reg 1`: the connection tracking state bits.
struct Ct: Equatable {
    static let name = "ct"
    static let stateKey = UInt32(NFT_CT_STATE.rawValue)
    var key: UInt32
    var dreg = reg1

    init(key: UInt32) { self.key = key }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_CT_KEY), key)
        e.setU32(attr(NFTNL_EXPR_CT_DREG), dreg)
        return e
    }

    init(_ e: OpaquePointer) {
        key = e.u32(attr(NFTNL_EXPR_CT_KEY))
        dreg = e.has(attr(NFTNL_EXPR_CT_DREG)) ? e.u32(attr(NFTNL_EXPR_CT_DREG)) : 0
    }
}
