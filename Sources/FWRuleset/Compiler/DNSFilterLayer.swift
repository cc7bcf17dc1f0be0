import FWPolicy

/// The kernel half of `dns.filter = true`: every DNS query of the sandbox, to any server,
/// goes to the forwarder `fwctl watch` runs on the local host, which answers allowed names
/// only (and puts their addresses into the sets before the answer is released).
///
/// - A nat output chain redirects udp and tcp port 53 to `filter_port` on 127.0.0.1 / ::1,
///   except queries carrying `DNSSettings.filterMark`: the forwarder's own.
/// - In the filter output chain only marked queries reach the resolvers
///   (`Compiler.dnsRules`), and the redirected queries are accepted on their way to the
///   forwarder: a redirected packet keeps its original route, so `oifname "lo"` does not
///   match it.
struct DNSFilterLayer {
    let port: UInt16
    /// What the forwarder's own queries carry.
    let mark = DNSSettings.filterMark

    static let natChain = "dns_filter"
    /// Before every nat chain at the usual dstnat priority (-100), Docker's among them: Docker
    /// DNATs 127.0.0.11:53 (its embedded resolver) to a random port in its own nat OUTPUT
    /// chain, and the first chain that NATs a connection decides it. At -100 a table made
    /// before fwctl's (the container's) would win, and the query would pass the filter by.
    /// The forwarder's own marked queries are accepted here untouched, so Docker's DNAT
    /// still takes them to its resolver.
    static let natPriority = -110
    static let dnsPort = PortRange(port: 53)

    init?(_ p: Policy) {
        guard p.dns.filter else { return nil }
        port = p.dns.filterPort
    }

    /// Where redirected queries land: the forwarder's port on both loopback addresses.
    var listeners: [SocketEndpoint] {
        AddressFamily.allCases.map { SocketEndpoint(address: .localHost($0), port: port) }
    }

    /// For the filter output chain, where the DNS rules would be: the redirected queries
    /// on their way to the forwarder.
    var filterRules: [Rule] { Compiler.dnsRules(listeners) }

    /// After the marked DNS rules and before `ct state established`: any other packet to
    /// port 53 is dropped, so a flow opened before the filter existed (conntrack keeps it
    /// out of the nat chain) cannot go on. Redirected queries are past nat here, at
    /// `filter_port`, and unaffected.
    var blockRules: [Rule] {
        [TransportProtocol.udp, .tcp].map { Rule([.port($0, .destination, .ranges([Self.dnsPort]))], [.counter], .drop) }
    }

    /// First in the output chain, before loopback is accepted: a resolver on a loopback
    /// address of its own (Docker's 127.0.0.11, DNATed to a random port) is reachable with
    /// fwctl's mark only, on any port; otherwise the sandbox would talk to the real port
    /// past the filter. 127.0.0.1 and ::1 are left alone: the forwarder and the proxy are there.
    func loopbackGuards(_ servers: [SocketEndpoint]) -> [Rule] {
        let own = Set(servers.map(\.address).filter { $0.isLoopback && $0 != .localHost($0.family) })
        return own.sorted().flatMap { a -> [Rule] in
            let to = Match.address(.destination, a.family, .prefix(CIDR(host: a)))
            return [Rule([to, .mark(mark)], [.counter], .accept), Rule([to], [.counter], .drop)]
        }
    }

    static let zoneChain = "dns_zone"
    /// nft's `raw` priority: before conntrack (-200), where a zone can still be chosen.
    static let rawPriority = -300

    /// Puts fwctl's marked flows in their own conntrack zone (DNSSettings.filterZone), so a
    /// sandbox query never rides one of them, and so never meets the drop that guards
    /// against exactly that.
    var zoneChain: Chain {
        Chain(name: Self.zoneChain, base: .init(type: .filter, hook: .output, priority: Self.rawPriority, policy: .accept),
              rules: [Rule([.mark(mark)], [.ctZone(DNSSettings.filterZone)], nil)])
    }

    static let guardChain = "dns_filter_in"

    /// An input chain of its own (whatever `inbound` says): packets to `filter_port` reach
    /// only a socket that carries fwctl's mark, the forwarder's. Another user cannot stand
    /// in for it (binding the port while watch is down, or beside it) and answer the
    /// redirected queries: the proxy's lookups among them.
    var inputGuard: Chain {
        let port = PortMatch.ranges([PortRange(port: port)])
        var rules: [Rule] = []
        for proto in [TransportProtocol.udp, .tcp] {
            // TCP by its first packet: the handshake's last ACK finds a request socket,
            // which has no mark to read; what follows belongs to a connection let in.
            let first: [Match] = proto == .tcp ? [.ctState([.new])] : []
            rules.append(Rule([.port(proto, .destination, port)] + first + [.socketMark(mark)], [], .accept))
            rules.append(Rule([.port(proto, .destination, port)] + first, [.counter], .drop))
        }
        return Chain(name: Self.guardChain, base: .init(type: .filter, hook: .input, priority: -10, policy: .accept), rules: rules)
    }

    var natChain: Chain {
        var rules = [Rule([.mark(mark)], [], .accept)]
        rules += [TransportProtocol.udp, .tcp].map { proto in
            Rule([.port(proto, .destination, .ranges([Self.dnsPort]))], [.counter, .redirect(port: port)], nil)
        }
        return Chain(name: Self.natChain, base: .init(type: .nat, hook: .output, priority: Self.natPriority, policy: .accept),
                     rules: rules)
    }

    /// A line for the rendering's notes.
    var note: String {
        "dns filter: every DNS query (udp/tcp 53, any server) is redirected to 127.0.0.1/::1:\(port), where fwctl watch answers allowed names only"
    }
}
