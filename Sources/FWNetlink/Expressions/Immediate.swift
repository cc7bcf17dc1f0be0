import CNetfilter

/// `immediate reg 0 VERDICT [CHAIN]`: accept, drop, jump.
struct Immediate: Equatable {
    static let name = "immediate"
    static let accept = Immediate(verdict: 1)   // NF_ACCEPT
    static let drop = Immediate(verdict: 0)     // NF_DROP
    var verdict: Int32
    var chain: String?

    init(verdict: Int32, chain: String? = nil) { self.verdict = verdict; self.chain = chain }
    static func jump(_ chain: String) -> Immediate { Immediate(verdict: NFT_JUMP.rawValue, chain: chain) }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_IMM_DREG), regVerdict)
        e.setU32(attr(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: verdict))
        if let c = chain { nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), c) }
        return e
    }

    init(_ e: OpaquePointer) {
        verdict = Int32(bitPattern: e.u32(attr(NFTNL_EXPR_IMM_VERDICT)))
        chain = e.str(attr(NFTNL_EXPR_IMM_CHAIN))
    }
}
