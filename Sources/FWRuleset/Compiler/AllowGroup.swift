import FWPolicy

/// Direct allow entries that share a protocol and a port list share one IPv4 and one IPv6
/// set, and one rule each: `ip daddr @allow4_tcp_443 tcp dport 443 counter accept`.
/// Grouping keeps the ruleset short however many hosts the policy names.
struct AllowGroup {
    let proto: TransportProtocol
    let ports: [PortRange]
    var hosts: [String] = []
    var prefixes: [CIDR] = []

    static func groups(of p: Policy, addresses: [String: [IPAddress]]) -> [AllowGroup] {
        var byKey: [String: AllowGroup] = [:]
        for rule in p.allows where rule.via == .direct {
            let ports = PortRange.merge(rule.ports)
            let key = "\(rule.proto)|\(ports)"
            var g = byKey[key] ?? AllowGroup(proto: rule.proto, ports: ports)
            switch rule.target {
            case .host(let h):
                g.hosts.append(h.name)
                g.prefixes += (addresses[h.name] ?? []).map(CIDR.init(host:))
            case .cidr(let list), .githubMeta(_, let list):
                g.prefixes += list
            }
            byKey[key] = g
        }
        return byKey.values.sorted { a, b in
            a.proto != b.proto ? a.proto < b.proto : a.ports.lexicographicallyPrecedes(b.ports)
        }
    }

    func setName(_ f: AddressFamily) -> String {
        let family = f == .ipv4 ? "4" : "6"
        let portText = ports.map { $0.isSingle ? "\($0.lower)" : "\($0.lower)to\($0.upper)" }.joined(separator: "_")
        let name = "allow\(family)_\(proto)_\(portText)"
        // Long port lists would make long names; keep them readable and unique.
        guard name.count > 40 else { return name }
        return "allow\(family)_\(proto)_\(portText.prefix(20))_\(Self.fnv1a(portText))"
    }

    var sets: [NamedSet] {
        let uniqueHosts = Array(Set(hosts)).sorted()
        return AddressFamily.allCases.map { f in
            NamedSet(name: setName(f), keyType: .init(f),
                     elements: CIDRSet.merge(prefixes.filter { $0.family == f }), hosts: uniqueHosts)
        }
    }

    var rules: [Rule] {
        AddressFamily.allCases.map { f in
            Rule([.address(.destination, f, .set(setName(f))), .port(proto, .destination, .ranges(ports))],
                 [.counter], .accept)
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
