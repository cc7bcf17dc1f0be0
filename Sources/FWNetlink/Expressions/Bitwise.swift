import CNetfilter

/// `bitwise reg 1 = ( reg 1 & MASK ) ^ XOR`: used for `ct state a,b`.
struct Bitwise: Equatable {
    static let name = "bitwise"
    var sreg = reg1
    var dreg = reg1
    var mask: [UInt8]
    var xor: [UInt8]

    init(mask: [UInt8], xor: [UInt8]) { self.mask = mask; self.xor = xor }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_BITWISE_SREG), sreg)
        e.setU32(attr(NFTNL_EXPR_BITWISE_DREG), dreg)
        e.setU32(attr(NFTNL_EXPR_BITWISE_LEN), UInt32(mask.count))
        e.setData(attr(NFTNL_EXPR_BITWISE_MASK), mask)
        e.setData(attr(NFTNL_EXPR_BITWISE_XOR), xor)
        return e
    }

    init(_ e: OpaquePointer) {
        sreg = e.u32(attr(NFTNL_EXPR_BITWISE_SREG))
        dreg = e.u32(attr(NFTNL_EXPR_BITWISE_DREG))
        mask = e.data(attr(NFTNL_EXPR_BITWISE_MASK))
        xor = e.data(attr(NFTNL_EXPR_BITWISE_XOR))
    }
}
