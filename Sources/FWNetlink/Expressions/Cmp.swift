import CNetfilter

/// `cmp OP reg 1 DATA`: compares the register with bytes in network order.
struct Cmp: Equatable {
    static let name = "cmp"
    enum Op: UInt32 { case eq = 0, neq = 1, lte = 3, gte = 5 }
    var op: UInt32
    var sreg = reg1
    var data: [UInt8]

    init(_ op: Op, _ data: [UInt8]) { self.op = op.rawValue; self.data = data }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_CMP_SREG), sreg)
        e.setU32(attr(NFTNL_EXPR_CMP_OP), op)
        e.setData(attr(NFTNL_EXPR_CMP_DATA), data)
        return e
    }

    init(_ e: OpaquePointer) {
        sreg = e.u32(attr(NFTNL_EXPR_CMP_SREG))
        op = e.u32(attr(NFTNL_EXPR_CMP_OP))
        data = e.data(attr(NFTNL_EXPR_CMP_DATA))
    }
}
