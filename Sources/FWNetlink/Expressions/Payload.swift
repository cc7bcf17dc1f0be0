import CNetfilter

/// `payload load LEN b @ BASE header + OFFSET => reg 1`: bytes from a packet header.
struct Payload: Equatable {
    static let name = "payload"
    enum Base: UInt32 { case network = 1, transport = 2 }
    var base: UInt32
    var offset: UInt32
    var len: UInt32
    var dreg = reg1

    init(_ base: Base, offset: UInt32, len: UInt32) { self.base = base.rawValue; self.offset = offset; self.len = len }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_PAYLOAD_DREG), dreg)
        e.setU32(attr(NFTNL_EXPR_PAYLOAD_BASE), base)
        e.setU32(attr(NFTNL_EXPR_PAYLOAD_OFFSET), offset)
        e.setU32(attr(NFTNL_EXPR_PAYLOAD_LEN), len)
        return e
    }

    init(_ e: OpaquePointer) {
        dreg = e.u32(attr(NFTNL_EXPR_PAYLOAD_DREG))
        base = e.u32(attr(NFTNL_EXPR_PAYLOAD_BASE))
        offset = e.u32(attr(NFTNL_EXPR_PAYLOAD_OFFSET))
        len = e.u32(attr(NFTNL_EXPR_PAYLOAD_LEN))
    }
}
