import CNetfilter

/// One nf_tables expression as a plain Swift value: the layer between the IR's matches
/// and libnftnl. Each case has its own file with its encoding and decoding, so an
/// expression has exactly one home.
enum Expr: Equatable {
    case meta(Meta)
    case cmp(Cmp)
    case payload(Payload)
    case bitwise(Bitwise)
    case ct(Ct)
    case lookup(Lookup)
    case range(Range)
    case counter(Counter)
    case limit(Limit)
    case log(Log)
    case reject(Reject)
    case immediate(Immediate)
    case redir(Redir)
    case socket(Socket)
    /// An expression fwctl never emits, kept by name for an honest read-back.
    case other(name: String)

    /// Allocates the libnftnl expression; the caller adds it to a rule (which then owns it).
    func build() -> OpaquePointer {
        switch self {
        case .meta(let x): return x.build()
        case .cmp(let x): return x.build()
        case .payload(let x): return x.build()
        case .bitwise(let x): return x.build()
        case .ct(let x): return x.build()
        case .lookup(let x): return x.build()
        case .range(let x): return x.build()
        case .counter(let x): return x.build()
        case .limit(let x): return x.build()
        case .log(let x): return x.build()
        case .reject(let x): return x.build()
        case .immediate(let x): return x.build()
        case .redir(let x): return x.build()
        case .socket(let x): return x.build()
        case .other(let name): return nftnl_expr_alloc(name)
        }
    }

    /// Reads a libnftnl expression (from a rule the kernel dumped).
    init(_ e: OpaquePointer) {
        let name = String(cString: nftnl_expr_get_str(e, UInt16(NFTNL_EXPR_NAME)))
        switch name {
        case Meta.name: self = .meta(Meta(e))
        case Cmp.name: self = .cmp(Cmp(e))
        case Payload.name: self = .payload(Payload(e))
        case Bitwise.name: self = .bitwise(Bitwise(e))
        case Ct.name: self = .ct(Ct(e))
        case Lookup.name: self = .lookup(Lookup(e))
        case Range.name: self = .range(Range(e))
        case Counter.name: self = .counter(Counter(e))
        case Limit.name: self = .limit(Limit(e))
        case Log.name: self = .log(Log(e))
        case Reject.name: self = .reject(Reject(e))
        case Immediate.name: self = .immediate(Immediate(e))
        case Redir.name: self = .redir(Redir(e))
        case Socket.name: self = .socket(Socket(e))
        default: self = .other(name: name)
        }
    }
}

/// The register every fwctl match loads into and compares from.
let reg1 = UInt32(NFT_REG_1.rawValue)
let regVerdict = UInt32(NFT_REG_VERDICT.rawValue)

/// libnftnl attribute numbers come as plain Ints or as enum cases; both become UInt16.
@inline(__always) func attr(_ v: Int) -> UInt16 { UInt16(v) }
@inline(__always) func attr<E: RawRepresentable>(_ v: E) -> UInt16 where E.RawValue: BinaryInteger { UInt16(v.rawValue) }

/// Small helpers over libnftnl's getters and setters.
extension OpaquePointer {
    func setU32(_ a: UInt16, _ v: UInt32) { nftnl_expr_set_u32(self, a, v) }
    func setU64(_ a: UInt16, _ v: UInt64) { nftnl_expr_set_u64(self, a, v) }
    func setData(_ a: UInt16, _ bytes: [UInt8]) {
        bytes.withUnsafeBytes { _ = nftnl_expr_set(self, a, $0.baseAddress, UInt32($0.count)) }
    }
    func u32(_ a: UInt16) -> UInt32 { nftnl_expr_get_u32(self, a) }
    func u64(_ a: UInt16) -> UInt64 { nftnl_expr_get_u64(self, a) }
    func has(_ a: UInt16) -> Bool { nftnl_expr_is_set(self, a) }
    func data(_ a: UInt16) -> [UInt8] {
        var len: UInt32 = 0
        guard let p = nftnl_expr_get(self, a, &len) else { return [] }
        return Array(UnsafeRawBufferPointer(start: p, count: Int(len)))
    }
    func str(_ a: UInt16) -> String? {
        guard nftnl_expr_is_set(self, a), let p = nftnl_expr_get_str(self, a) else { return nil }
        return String(cString: p)
    }
}
