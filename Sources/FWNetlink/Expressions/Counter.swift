import CNetfilter

/// `counter pkts N bytes M`.
struct Counter: Equatable {
    static let name = "counter"
    var packets: UInt64 = 0
    var bytes: UInt64 = 0

    init() {}

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU64(attr(NFTNL_EXPR_CTR_PACKETS), packets)
        e.setU64(attr(NFTNL_EXPR_CTR_BYTES), bytes)
        return e
    }

    init(_ e: OpaquePointer) {
        packets = e.u64(attr(NFTNL_EXPR_CTR_PACKETS))
        bytes = e.u64(attr(NFTNL_EXPR_CTR_BYTES))
    }
}
