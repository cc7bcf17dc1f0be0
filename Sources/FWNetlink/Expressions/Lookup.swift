import CNetfilter

/// `lookup reg 1 set NAME`: membership in a named or anonymous set.
struct Lookup: Equatable {
    static let name = "lookup"
    var sreg = reg1
    var set: String
    /// Ties the lookup to a set created in the same batch (anonymous sets).
    var setID: UInt32?

    init(set: String, setID: UInt32?) { self.set = set; self.setID = setID }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        e.setU32(attr(NFTNL_EXPR_LOOKUP_SREG), sreg)
        nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOOKUP_SET), set)
        if let id = setID { e.setU32(attr(NFTNL_EXPR_LOOKUP_SET_ID), id) }
        return e
    }

    init(_ e: OpaquePointer) {
        sreg = e.u32(attr(NFTNL_EXPR_LOOKUP_SREG))
        set = e.str(attr(NFTNL_EXPR_LOOKUP_SET)) ?? ""
        setID = nil // the kernel answers with the name only
    }

    static func == (a: Lookup, b: Lookup) -> Bool { a.sreg == b.sreg && a.set == b.set }
}
