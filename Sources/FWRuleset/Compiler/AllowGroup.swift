import FWPolicy

/// Direct allow entries that share a protocol and a port list share their sets, and one
/// rule per set: `ip daddr @allow4_tcp_443 tcp dport 443 counter accept`. Grouping keeps
/// the ruleset short however many hosts the policy names.
///
/// A group has two kinds of sets, each per family and each only when an entry needs it:
/// fixed prefixes (cidr, github_meta) merged in interval sets, and the addresses of host
/// names in sets of single addresses with the timeout flag, which `fwctl watch` updates
/// element by element as DNS answers change.
struct AllowGroup {
    let proto: TransportProtocol
    let ports: [PortRange]
    var hosts: [String] = []
    var hostAddresses: [IPAddress] = []
    var prefixes: [CIDR] = []
    /// Whether a cidr or github_meta entry is in the group (its list may still be empty).
    var hasFixed = false

    /// What a set of the group holds; the raw value starts its name.
    enum Content: String, CaseIterable {
        /// Fixed prefixes, merged.
        case allow
        /// The addresses host names resolved to, one element each.
        case names
    }

    static func groups(of p: Policy, addresses: [String: [IPAddress]]) -> [AllowGroup] {
        var byKey: [String: AllowGroup] = [:]
        for rule in p.allows where rule.via == .direct {
            let ports = PortRange.merge(rule.ports)
            let key = "\(rule.proto)|\(ports)"
            var g = byKey[key] ?? AllowGroup(proto: rule.proto, ports: ports)
            switch rule.target {
            case .host(let h):
                g.hosts.append(h.name)
                g.hostAddresses += addresses[h.name] ?? []
            case .cidr(let list), .githubMeta(_, let list):
                g.hasFixed = true
                g.prefixes += list
            }
            byKey[key] = g
        }
        return byKey.values.sorted { a, b in
            a.proto != b.proto ? a.proto < b.proto : a.ports.lexicographicallyPrecedes(b.ports)
        }
    }

    /// The kinds of sets this group has, in rule order: fixed prefixes before names.
    var contents: [Content] {
        Content.allCases.filter { $0 == .allow ? hasFixed : !hosts.isEmpty }
    }

    /// `allow4_tcp_443`, `names6_udp_123`, `allow4_tcp_8000to8100_9000`.
    func setName(_ c: Content, _ f: AddressFamily) -> String {
        let head = "\(c.rawValue)\(f == .ipv4 ? "4" : "6")_\(proto)"
        let portText = ports.map { $0.isSingle ? "\($0.lower)" : "\($0.lower)to\($0.upper)" }.joined(separator: "_")
        let name = "\(head)_\(portText)"
        // Long port lists would make long names; keep them readable and unique.
        guard name.count > 40 else { return name }
        return "\(head)_\(portText.prefix(20))_\(Self.fnv1a(portText))"
    }

    var sets: [NamedSet] {
        contents.flatMap { c in AddressFamily.allCases.map { f in set(c, f) } }
    }

    func set(_ c: Content, _ f: AddressFamily) -> NamedSet {
        switch c {
        case .allow:
            return NamedSet(name: setName(c, f), keyType: .init(f), elements: CIDRSet.merge(prefixes.filter { $0.family == f }))
        case .names:
            // Not merged: the kernel holds each address as its own element, with its own timeout.
            let addresses = Set(hostAddresses.filter { $0.family == f }).sorted()
            return NamedSet(name: setName(c, f), keyType: .init(f), flags: [.timeout],
                            elements: addresses.map(CIDR.init(host:)), hosts: Set(hosts).sorted())
        }
    }

    var rules: [Rule] {
        contents.flatMap { c in
            AddressFamily.allCases.map { f in
                Rule([.address(.destination, f, .set(setName(c, f))), .port(proto, .destination, .ranges(ports))],
                     [.counter], .accept)
            }
        }
    }

    /// 32-bit FNV-1a, as 8 hex digits: stable across runs and platforms.
    static func fnv1a(_ s: String) -> String {
        var h: UInt32 = 0x811c9dc5
        for b in s.utf8 { h = (h ^ UInt32(b)) &* 0x0100_0193 }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 8 - hex.count) + hex
    }
}
