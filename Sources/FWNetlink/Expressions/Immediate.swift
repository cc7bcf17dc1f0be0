import CNetfilter

/// `immediate reg 0 VERDICT [CHAIN]` (accept, drop, jump), or `immediate reg 1 DATA`, which
/// loads bytes for a later statement (the port of `redirect to :3130`).
struct Immediate: Equatable {
    static let name = "immediate"
    static let accept = Immediate(verdict: 1)   // NF_ACCEPT
    static let drop = Immediate(verdict: 0)     // NF_DROP
    var dreg = regVerdict
    /// Set for the verdict form.
    var verdict: Int32?
    var chain: String?
    /// Set for the data form.
    var data: [UInt8]?

    init(verdict: Int32, chain: String? = nil) { self.verdict = verdict; self.chain = chain }
    static func jump(_ chain: String) -> Immediate { Immediate(verdict: NFT_JUMP.rawValue, chain: chain) }

    /// Bytes into a data register.
    static func load(_ bytes: [UInt8], into reg: UInt32 = reg1) -> Immediate {
        var i = Immediate(verdict: 0)
        i.verdict = nil
        i.dreg = reg
        i.data = bytes
        return i
    }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_IMM_DREG), dreg)
        if let verdict { e.setU32(attr(NFTNL_EXPR_IMM_VERDICT), UInt32(bitPattern: verdict)) }
        if let c = chain { nftnl_expr_set_str(e, attr(NFTNL_EXPR_IMM_CHAIN), c) }
        if let data { e.setData(attr(NFTNL_EXPR_IMM_DATA), data) }
        return e
    }

    init(_ e: OpaquePointer) {
        dreg = e.has(attr(NFTNL_EXPR_IMM_DREG)) ? e.u32(attr(NFTNL_EXPR_IMM_DREG)) : 0
        verdict = e.has(attr(NFTNL_EXPR_IMM_VERDICT)) ? Int32(bitPattern: e.u32(attr(NFTNL_EXPR_IMM_VERDICT))) : nil
        chain = e.str(attr(NFTNL_EXPR_IMM_CHAIN))
        data = e.has(attr(NFTNL_EXPR_IMM_DATA)) ? e.data(attr(NFTNL_EXPR_IMM_DATA)) : nil
    }
}
