import FWPolicy

/// What the compiler is given. It does no I/O: DNS answers, resolvers and local networks
/// are gathered before and passed in, so the same input always gives the same ruleset.
public struct CompileInput: Sendable {
    public var policy: Policy
    /// The resolvers DNS may reach: `dns.servers`, or resolv.conf's when the policy has none.
    public var dnsServers: [SocketEndpoint]
    /// Addresses of direct host names. nil: offline, DNS was not asked.
    public var hostAddresses: [String: [IPAddress]]?
    /// This host's own interface subnets, used when `firewall.host_network` is true.
    public var hostNetworks: [CIDR]
    /// The uid of a `proxy.user` given by name, when this host knows it. nil leaves the
    /// name in the rules (`meta skuid "fwproxy"`): fine to render, not to send to a kernel.
    public var proxyUID: UInt32?

    public init(policy: Policy, dnsServers: [SocketEndpoint], hostAddresses: [String: [IPAddress]]?, hostNetworks: [CIDR] = [],
                proxyUID: UInt32? = nil) {
        self.policy = policy
        self.dnsServers = dnsServers
        self.hostAddresses = hostAddresses
        self.hostNetworks = hostNetworks
        self.proxyUID = proxyUID
    }
}

/// Policy + resolution -> Ruleset. Deterministic: set elements are merged and sorted,
/// sets and rules come in a fixed order.
public enum Compiler {
    public static let logPrefix = "fwctl-deny: "
    /// The rate of denial log lines: enough to see what is blocked, too few to flood.
    public static let logLimit = Statement.limit(rate: 10, per: .minute, burst: 5)

    public static func compile(_ input: CompileInput) -> Ruleset {
        let p = input.policy
        let groups = AllowGroup.groups(of: p, addresses: input.hostAddresses ?? [:])
        var sets: [NamedSet] = []
        if p.firewall.hostNetwork {
            sets += AddressFamily.allCases.map { f in
                NamedSet(name: "host_network\(f == .ipv4 ? 4 : 6)", keyType: .init(f),
                         elements: CIDRSet.merge(input.hostNetworks.filter { $0.family == f }))
            }
        }
        for g in groups { sets += g.sets }
        let proxy = ProxyLayer(p, proxyUID: input.proxyUID)
        sets += proxy?.guardSets ?? []
        let dnsFilter = DNSFilterLayer(p)

        var chains = [outputChain(p, input: input, groups: groups, proxy: proxy, dnsFilter: dnsFilter)]
        if p.firewall.inbound == .established { chains.append(inputChain(p)) }
        if let guardChain = dnsFilter?.inputGuard { chains.append(guardChain) }
        if let zone = dnsFilter?.zoneChain { chains.append(zone) }
        // Direct destinations (and the host's own subnets) are reached directly, not redirected.
        let direct = (p.firewall.hostNetwork ? hostNetworkRules(.destination) : []) + groups.flatMap(\.rules)
        if let nat = proxy?.natChain(direct: direct) { chains.append(nat) }
        if let nat = dnsFilter?.natChain { chains.append(nat) }

        return Ruleset(table: Table(name: p.firewall.table, sets: sets, chains: chains),
                       notes: notes(p, offline: input.hostAddresses == nil, proxy: proxy, dnsFilter: dnsFilter))
    }

    /// What `fwctl up` leaves when it cannot apply the policy and no table of fwctl's is in
    /// place: nothing leaves the host but loopback, replies to connections that already
    /// exist, and DNS to `dnsServers` (so that a corrected policy can be resolved and
    /// applied). Closed, not open, until a good policy is applied.
    public static func lockdown(table: String, reason: String, dnsServers: [SocketEndpoint]) -> Ruleset {
        let rules = [
            Rule([.interfaceName(.destination, "lo")], [.counter], .accept),
            Rule([.ctState([.established, .related])], [.counter], .accept),
        ] + dnsRules(dnsServers) + [
            Rule([], [.counter], .drop),
        ]
        return Ruleset(table: Table(name: table, chains: [
            Chain(name: "output", base: .init(type: .filter, hook: .output, priority: 0, policy: .drop), rules: rules),
        ]), notes: ["lockdown: \(reason)"])
    }

    // MARK: - Chains

    static func outputChain(_ p: Policy, input: CompileInput, groups: [AllowGroup], proxy: ProxyLayer?,
                            dnsFilter: DNSFilterLayer?) -> Chain {
        var rules = dnsFilter?.loopbackGuards(input.dnsServers) ?? []
        rules.append(Rule([.interfaceName(.destination, "lo")], [.counter], .accept))
        // With the filter, DNS is decided before `established`: a flow to port 53 opened
        // before the filter existed must not carry on past it.
        if let dnsFilter { rules += dnsRules(input.dnsServers, mark: dnsFilter.mark) + dnsFilter.blockRules }
        rules.append(Rule([.ctState([.established, .related])], [.counter], .accept))
        if p.firewall.icmp == .essential { rules += icmpRules(inbound: false) }
        if dnsFilter == nil { rules += dnsRules(input.dnsServers) }
        rules += dnsFilter?.filterRules ?? []
        if p.firewall.hostNetwork { rules += hostNetworkRules(.destination) }
        for g in groups { rules += g.rules }
        rules += proxy?.filterRules ?? []
        rules += denyRules(p, egress: true)
        return Chain(name: "output", base: .init(type: .filter, hook: .output, priority: 0, policy: .drop), rules: rules)
    }

    static func inputChain(_ p: Policy) -> Chain {
        var rules: [Rule] = [
            Rule([.interfaceName(.source, "lo")], [.counter], .accept),
            Rule([.ctState([.established, .related])], [.counter], .accept),
        ]
        if p.firewall.icmp == .essential { rules += icmpRules(inbound: true) }
        if p.firewall.hostNetwork { rules += hostNetworkRules(.source) }
        rules += denyRules(p, egress: false)
        return Chain(name: "input", base: .init(type: .filter, hook: .input, priority: 0, policy: .drop), rules: rules)
    }

    /// ICMP errors both ways (they are mostly `related` already, this keeps path MTU
    /// discovery working when conntrack lost the flow), and IPv6 neighbour and router
    /// discovery, without which IPv6 does not work at all. Echo is not essential.
    static func icmpRules(inbound: Bool) -> [Rule] {
        let v4: [ICMPType] = [.destinationUnreachable, .timeExceeded, .parameterProblem]
        var v6: [ICMPv6Type] = [.destinationUnreachable, .packetTooBig, .timeExceeded, .parameterProblem,
                                .neighborSolicit, .neighborAdvert]
        v6 += inbound ? [.routerAdvert] : [.routerSolicit]
        return [
            Rule([.icmpType(v4.sorted())], [.counter], .accept),
            Rule([.icmpv6Type(v6.sorted())], [.counter], .accept),
        ]
    }

    /// DNS only to the named resolvers, udp and tcp, each on its own port. `mark`: only
    /// packets with this mark (the DNS filter's own queries, `DNSSettings.filterMark`).
    static func dnsRules(_ servers: [SocketEndpoint], mark: UInt32? = nil) -> [Rule] {
        var seen = Set<SocketEndpoint>()
        let marked = mark.map { [Match.mark($0)] } ?? []
        return servers.sorted().filter { seen.insert($0).inserted }.flatMap { s in
            TransportProtocol.allCases.sorted().map { proto in
                Rule(marked + [.address(.destination, s.address.family, .prefix(CIDR(host: s.address))),
                               .port(proto, .destination, .ranges([PortRange(port: s.port)]))], [.counter], .accept)
            }
        }
    }

    static func hostNetworkRules(_ dir: Match.Direction) -> [Rule] {
        AddressFamily.allCases.map { f in
            Rule([.address(dir, f, .set("host_network\(f == .ipv4 ? 4 : 6)"))], [.counter], .accept)
        }
    }

    /// The end of a chain: a rate-limited log line, then reject or drop.
    static func denyRules(_ p: Policy, egress: Bool) -> [Rule] {
        var rules: [Rule] = []
        if p.firewall.logDenied { rules.append(Rule([], [logLimit, .log(prefix: logPrefix)], nil)) }
        if egress && p.firewall.egress == .reject {
            rules.append(Rule([.l4proto(.tcp)], [.counter], .reject(.tcpReset)))
            rules.append(Rule([], [.counter], .reject(.adminProhibited)))
        } else {
            rules.append(Rule([], [.counter], .drop))
        }
        return rules
    }

    static func notes(_ p: Policy, offline: Bool, proxy: ProxyLayer?, dnsFilter: DNSFilterLayer?) -> [String] {
        var notes: [String] = []
        if offline {
            notes.append("offline: DNS was not asked; the sets of host names are empty")
        }
        if let n = proxy?.note { notes.append(n) }
        if let n = dnsFilter?.note { notes.append(n) }
        return notes
    }
}

extension IPAddress {
    /// 127.0.0.1 or ::1: where a redirect delivers, as the filter chain then sees it.
    static func localHost(_ f: AddressFamily) -> IPAddress {
        IPAddress(family: f, value: f == .ipv4 ? 0x7f00_0001 : 1)
    }
}
