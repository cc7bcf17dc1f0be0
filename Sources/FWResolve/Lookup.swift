import FWPolicy

/// How one address family of one name ended.
enum FamilyOutcome: Equatable, Sendable {
    case addresses([IPAddress], ttl: UInt32, chain: [String])
    case nxdomain(chain: [String])
    case nodata(chain: [String])
    /// The servers never gave a usable answer, or the CNAME chain was unusable.
    case failure(NameStatus, String)
}

/// Follows one family (A or AAAA) of one name through its CNAME chain, across as many
/// queries as the servers make necessary.
struct FamilyLookup {
    /// Longer chains are refused: real ones have two or three hops.
    static let maxChain = 8

    let name: String
    let type: RecordType
    /// The name the next query asks for: the queried name, then the end of the chain.
    private(set) var current: String
    private(set) var chain: [String] = []
    private var ttl = UInt32.max

    init(name: String, type: RecordType) {
        self.name = name
        self.current = name
        self.type = type
    }

    /// Reads the answer to a query for `current`. Nil means the chain ended at a target
    /// whose addresses the server did not include, so `current` must be asked next.
    mutating func absorb(_ response: DNSResponse) -> FamilyOutcome? {
        let asked = current
        let addresses: [IPAddress]
        switch follow(response.records) {
        case .success(let found): addresses = found
        case .failure(let problem): return .failure(.error, problem.text)
        }
        switch response.rcode {
        case DNSResponse.nameError:
            return .nxdomain(chain: chain)
        case DNSResponse.noError where !addresses.isEmpty:
            return .addresses(addresses, ttl: ttl, chain: chain)
        case DNSResponse.noError:
            return current == asked ? .nodata(chain: chain) : nil
        default:
            // The transport hands over NOERROR and NXDOMAIN only; anything else is its bug.
            return .failure(.error, "unexpected \(response.rcodeName)")
        }
    }

    private struct ChainProblem: Error {
        let text: String
    }

    /// Walks owner -> CNAME target from `current` until a name owns records of `type`.
    private mutating func follow(_ records: [AnswerRecord]) -> Result<[IPAddress], ChainProblem> {
        while true {
            let owned = records.filter { $0.owner == current }
            let addresses = owned.compactMap { record -> (IPAddress, UInt32)? in
                guard case .address(let a) = record.data, a.family == type.family else { return nil }
                return (a, record.ttl)
            }
            if !addresses.isEmpty {
                ttl = addresses.reduce(ttl) { min($0, $1.1) }
                return .success(addresses.map(\.0))
            }
            guard let link = owned.lazy.compactMap({ record -> (String, UInt32)? in
                guard case .cname(let target) = record.data else { return nil }
                return (target, record.ttl)
            }).first else { return .success([]) }
            guard link.0 != name, !chain.contains(link.0) else {
                return .failure(ChainProblem(text: "CNAME loop at \(link.0)"))
            }
            guard chain.count < Self.maxChain else {
                return .failure(ChainProblem(text: "CNAME chain longer than \(Self.maxChain)"))
            }
            chain.append(link.0)
            ttl = min(ttl, link.1)
            current = link.0
        }
    }
}

extension NameResolution {
    /// Merges the two families: any address makes the name resolved; otherwise the most
    /// telling failure wins (a server failure over NODATA over NXDOMAIN).
    init(name: String, a: FamilyOutcome, aaaa: FamilyOutcome) {
        let families = [(RecordType.a, a), (RecordType.aaaa, aaaa)]
        var addresses: [IPAddress] = []
        var ttl: UInt32?
        var chain: [String] = []
        for (_, outcome) in families {
            guard case .addresses(let found, let t, let c) = outcome else { continue }
            addresses += found
            ttl = min(ttl ?? .max, t)
            if chain.isEmpty { chain = c }
        }
        let failures = families.compactMap { type, outcome -> (NameStatus, String)? in
            guard case .failure(let status, let text) = outcome else { return nil }
            return (status, "\(type.name): \(text)")
        }
        let detail = failures.isEmpty ? nil : failures.map(\.1).joined(separator: "; ")
        if !addresses.isEmpty {
            self.init(name: name, status: .ok, addresses: Array(Set(addresses)).sorted(), ttl: ttl,
                      chain: chain, detail: detail)
        } else if let first = failures.first {
            self.init(name: name, status: first.0, chain: Self.chain(of: families.map(\.1)), detail: detail)
        } else {
            self.init(name: name, emptyAnswers: families.map(\.1))
        }
    }

    /// Both families answered without addresses.
    private init(name: String, emptyAnswers outcomes: [FamilyOutcome]) {
        let chain = Self.chain(of: outcomes)
        let end = chain.last.map { " at \($0)" } ?? ""
        if outcomes.allSatisfy({ if case .nxdomain = $0 { return true } else { return false } }) {
            self.init(name: name, status: .nxdomain, chain: chain, detail: "NXDOMAIN\(end)")
        } else {
            self.init(name: name, status: .nodata, chain: chain, detail: "no A or AAAA records\(end)")
        }
    }

    /// The first non-empty chain: the aliases are worth showing even when nothing resolved.
    private static func chain(of outcomes: [FamilyOutcome]) -> [String] {
        for outcome in outcomes {
            switch outcome {
            case .addresses(_, _, let c), .nxdomain(let c), .nodata(let c):
                if !c.isEmpty { return c }
            case .failure:
                continue
            }
        }
        return []
    }
}
