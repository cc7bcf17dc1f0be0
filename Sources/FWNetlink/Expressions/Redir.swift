import CNetfilter

/// `redir proto_min reg 1 flags 0x2`: nat to the local host, to the port in register 1
/// (loaded by an immediate before it), as nft linearizes `redirect to :PORT`.
struct Redir: Equatable {
    static let name = "redir"
    /// NF_NAT_RANGE_PROTO_SPECIFIED: the port in the register is used.
    static let protoSpecified: UInt32 = 0x2
    var protoMinReg = reg1
    var flags = Redir.protoSpecified

    init() {}

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_REDIR_REG_PROTO_MIN), protoMinReg)
        e.setU32(attr(NFTNL_EXPR_REDIR_FLAGS), flags)
        return e
    }

    init(_ e: OpaquePointer) {
        protoMinReg = e.has(attr(NFTNL_EXPR_REDIR_REG_PROTO_MIN)) ? e.u32(attr(NFTNL_EXPR_REDIR_REG_PROTO_MIN)) : 0
        flags = e.has(attr(NFTNL_EXPR_REDIR_FLAGS)) ? e.u32(attr(NFTNL_EXPR_REDIR_FLAGS)) : 0
    }
}
