import CNetfilter

/// `log prefix P`.
struct Log: Equatable {
    static let name = "log"
    var prefix: String?

    init(prefix: String?) { self.prefix = prefix }

    func build() -> OpaquePointer {
        let e = nftnl_expr_alloc(Self.name)!
        if let p = prefix { nftnl_expr_set_str(e, attr(NFTNL_EXPR_LOG_PREFIX), p) }
        return e
    }

    init(_ e: OpaquePointer) { prefix = e.str(attr(NFTNL_EXPR_LOG_PREFIX)) }
}
