import CNetfilter

/// `range eq reg 1 FROM TO`: a single port range such as `tcp dport 8000-8100`.
struct Range: Equatable {
    static let name = "range"
    var op: UInt32 = 0 // NFT_RANGE_EQ
    var sreg = reg1
    var from: [UInt8]
    var to: [UInt8]

    init(from: [UInt8], to: [UInt8]) { self.from = from; self.to = to }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_RANGE_SREG), sreg)
        e.setU32(attr(NFTNL_EXPR_RANGE_OP), op)
        e.setData(attr(NFTNL_EXPR_RANGE_FROM_DATA), from)
        e.setData(attr(NFTNL_EXPR_RANGE_TO_DATA), to)
        return e
    }

    init(_ e: OpaquePointer) {
        sreg = e.u32(attr(NFTNL_EXPR_RANGE_SREG))
        op = e.u32(attr(NFTNL_EXPR_RANGE_OP))
        from = e.data(attr(NFTNL_EXPR_RANGE_FROM_DATA))
        to = e.data(attr(NFTNL_EXPR_RANGE_TO_DATA))
    }
}
