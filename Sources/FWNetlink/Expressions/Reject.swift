import CNetfilter

/// `reject type T code C`: tcp reset (type 1) or icmpx (type 2) with a code.
struct Reject: Equatable {
    static let name = "reject"
    static let tcpReset = Reject(type: 1, code: 0)
    static let icmpxAdminProhibited = Reject(type: 2, code: 3)
    var type: UInt32
    var code: UInt8

    init(type: UInt32, code: UInt8) { self.type = type; self.code = code }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_REJECT_TYPE), type)
        nftnl_expr_set_u8(e, attr(NFTNL_EXPR_REJECT_CODE), code)
        return e
    }

    init(_ e: OpaquePointer) {
        type = e.u32(attr(NFTNL_EXPR_REJECT_TYPE))
        code = nftnl_expr_get_u8(e, attr(NFTNL_EXPR_REJECT_CODE))
    }
}
