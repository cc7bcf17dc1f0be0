import CNetfilter

/// `ct load state => reg 1`: the connection tracking state bits; or, in the set form,
/// `ct set zone with reg 1 , dir original`: the zone (loaded by an immediate before it)
/// for the connection this packet opens, original direction only.
struct Ct: Equatable {
    static let name = "ct"
    static let stateKey = UInt32(NFT_CT_STATE.rawValue)
    static let zoneKey = UInt32(NFT_CT_ZONE.rawValue)
    /// IP_CT_DIR_ORIGINAL
    static let original: UInt8 = 0
    var key: UInt32
    /// The load form's destination register (0 in the set form).
    var dreg = reg1
    /// The set form's source register.
    var sreg: UInt32?
    var direction: UInt8?

    init(key: UInt32) { self.key = key }

    /// `ct original zone set` from register 1.
    static func setZone() -> Ct {
        var c = Ct(key: zoneKey)
        c.dreg = 0
        c.sreg = reg1
        c.direction = original
        return c
    }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_CT_KEY), key)
        if let sreg { e.setU32(attr(NFTNL_EXPR_CT_SREG), sreg) } else { e.setU32(attr(NFTNL_EXPR_CT_DREG), dreg) }
        if let direction { nftnl_expr_set_u8(e, attr(NFTNL_EXPR_CT_DIR), direction) }
        return e
    }

    init(_ e: OpaquePointer) {
        key = e.u32(attr(NFTNL_EXPR_CT_KEY))
        dreg = e.has(attr(NFTNL_EXPR_CT_DREG)) ? e.u32(attr(NFTNL_EXPR_CT_DREG)) : 0
        sreg = e.has(attr(NFTNL_EXPR_CT_SREG)) ? e.u32(attr(NFTNL_EXPR_CT_SREG)) : nil
        direction = e.has(attr(NFTNL_EXPR_CT_DIR)) ? nftnl_expr_get_u8(e, attr(NFTNL_EXPR_CT_DIR)) : nil
    }
}
