import CNetfilter

/// `socket load mark => reg 1`: a property of the local socket a packet is delivered to
/// (looked up on input). fwctl reads its mark: the DNS filter's port answers only to the
/// socket that carries fwctl's mark.
struct Socket: Equatable {
    static let name = "socket"
    enum Key: UInt32 {
        case mark = 1   // NFT_SOCKET_MARK
    }
    var key: UInt32
    var dreg = reg1

    init(_ key: Key) { self.key = key.rawValue }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_SOCKET_KEY), key)
        e.setU32(attr(NFTNL_EXPR_SOCKET_DREG), dreg)
        return e
    }

    init(_ e: OpaquePointer) {
        key = e.u32(attr(NFTNL_EXPR_SOCKET_KEY))
        dreg = e.has(attr(NFTNL_EXPR_SOCKET_DREG)) ? e.u32(attr(NFTNL_EXPR_SOCKET_DREG)) : 0
    }
}
