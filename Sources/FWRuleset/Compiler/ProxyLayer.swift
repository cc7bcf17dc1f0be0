import FWPolicy

/// The kernel half of the proxy: what makes `via = "proxy"` unavoidable.
///
/// - With `proxy.user`, only that uid may open TCP connections to the ports of proxied
///   entries, and never to the guarded ranges (loopback, link-local, metadata, ...: the
///   same list as the proxy's dial-time guard), unless a direct allow earlier in the chain
///   covers them. Every other local user falls through to the policy's deny.
/// - Without it (the proxy is another host), the sandbox may reach the proxy's listen
///   addresses, and nothing of the proxied hosts.
/// - `transparent = true` (which needs the user): a nat output chain sends every other
///   user's TCP 80/443 to `transparent_port` on the local host, IPv4 and IPv6, except
///   loopback traffic, the proxy user's own, and destinations a direct allow lets through;
///   the filter chain accepts the redirected connections.
struct ProxyLayer {
    let settings: ProxySettings
    let user: SocketUser?
    /// The ports of the `via = "proxy"` entries, merged.
    let ports: [PortRange]
    let deny: Verdict

    static let natChain = "transparent"
    /// nft's dstnat priority: before filter output (0), so filter sees the redirected packet.
    static let natPriority = -100

    init?(_ p: Policy, proxyUID: UInt32?) {
        guard let settings = p.proxy else { return nil }
        self.settings = settings
        switch settings.user {
        case .uid(let u)?: user = .uid(u)
        case .name(let n)?: user = proxyUID.map(SocketUser.uid) ?? .name(n)
        case nil: user = nil
        }
        ports = PortRange.merge(p.allows.filter { $0.via == .proxy && $0.proto == .tcp }.flatMap(\.ports))
        deny = p.firewall.egress == .reject ? .reject(.tcpReset) : .drop
    }

    var guardSets: [NamedSet] {
        guard user != nil, !ports.isEmpty else { return [] }
        return AddressFamily.allCases.map { f in
            NamedSet(name: Self.guardSet(f), keyType: .init(f), elements: GuardedRanges.merged(f))
        }
    }

    static func guardSet(_ f: AddressFamily) -> String { "proxy_guard\(f == .ipv4 ? 4 : 6)" }

    /// For the filter output chain, after the direct allows.
    var filterRules: [Rule] {
        var rules: [Rule] = []
        if settings.transparent {
            // The redirected connection as filter output sees it: to the local listener.
            rules += AddressFamily.allCases.map { f in
                Rule([.address(.destination, f, .prefix(CIDR(host: .localHost(f)))),
                      .port(.tcp, .destination, .ranges([PortRange(port: settings.transparentPort)]))], [.counter], .accept)
            }
        }
        if let user {
            guard !ports.isEmpty else { return rules }
            let port = Match.port(.tcp, .destination, .ranges(ports))
            rules += AddressFamily.allCases.map { f in
                Rule([.socketUser(user), .address(.destination, f, .set(Self.guardSet(f))), port], [.counter], deny)
            }
            rules.append(Rule([.socketUser(user), port], [.counter], .accept))
        } else {
            // The proxy elsewhere: its listeners are all the sandbox may reach for proxied hosts.
            var seen = Set<SocketEndpoint>()
            let listeners = ([settings.listen] + settings.endpoints.map(\.listen))
                .filter { !$0.address.isLoopback && seen.insert($0).inserted }
            rules += listeners.map { l in
                Rule([.address(.destination, l.address.family, .prefix(CIDR(host: l.address))),
                      .port(.tcp, .destination, .ranges([PortRange(port: l.port)]))], [.counter], .accept)
            }
        }
        return rules
    }

    /// The nat chain of transparent mode; nil without it. `direct`: the direct allows'
    /// rules (and the host network's), whose TCP destinations are left alone; UDP-only
    /// rules are left out (UDP is never redirected).
    func natChain(direct: [Rule]) -> Chain? {
        guard settings.transparent, let user else { return nil }
        var rules: [Rule] = [
            Rule([.interfaceName(.destination, "lo")], [], .accept),
            Rule([.socketUser(user)], [], .accept),
        ]
        rules += direct.filter { r in
            !r.matches.contains { if case .port(.udp, _, _) = $0 { return true }; return false }
        }.map { Rule($0.matches, [], .accept) }
        rules.append(Rule([.port(.tcp, .destination, .ranges([PortRange(port: 80), PortRange(port: 443)]))],
                          [.counter, .redirect(port: settings.transparentPort)], nil))
        return Chain(name: Self.natChain, base: .init(type: .nat, hook: .output, priority: Self.natPriority, policy: .accept),
                     rules: rules)
    }

    /// A line for the rendering's notes.
    var note: String? {
        var parts: [String] = []
        if let user, !ports.isEmpty {
            parts.append("only uid \(user) (proxy.user) reaches tcp/\(ports.map(\.description).joined(separator: ",")) for proxied hosts, never the guarded ranges")
        } else if user == nil {
            parts.append("proxied hosts only through the proxy at \(settings.listen)")
        }
        if settings.transparent { parts.append("other users' tcp/80,443 redirected to :\(settings.transparentPort)") }
        return parts.isEmpty ? nil : "via proxy: " + parts.joined(separator: "; ")
    }
}
