import CNetfilter

/// `limit rate R/UNIT burst B type packets`.
struct Limit: Equatable {
    static let name = "limit"
    var rate: UInt64
    /// The period in seconds: 1, 60, 3600.
    var unit: UInt64
    var burst: UInt32
    var type: UInt32 = 0 // NFT_LIMIT_PKTS
    var flags: UInt32 = 0

    init(rate: UInt64, unit: UInt64, burst: UInt32) { self.rate = rate; self.unit = unit; self.burst = burst }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU64(attr(NFTNL_EXPR_LIMIT_RATE), rate)
        e.setU64(attr(NFTNL_EXPR_LIMIT_UNIT), unit)
        e.setU32(attr(NFTNL_EXPR_LIMIT_BURST), burst)
        e.setU32(attr(NFTNL_EXPR_LIMIT_TYPE), type)
        e.setU32(attr(NFTNL_EXPR_LIMIT_FLAGS), flags)
        return e
    }

    init(_ e: OpaquePointer) {
        rate = e.u64(attr(NFTNL_EXPR_LIMIT_RATE))
        unit = e.u64(attr(NFTNL_EXPR_LIMIT_UNIT))
        burst = e.u32(attr(NFTNL_EXPR_LIMIT_BURST))
        type = e.u32(attr(NFTNL_EXPR_LIMIT_TYPE))
        flags = e.u32(attr(NFTNL_EXPR_LIMIT_FLAGS))
    }
}
