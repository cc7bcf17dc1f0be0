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

    /// For the filter output chain, right after the DNS rules.
    var filterRules: [Rule] { Compiler.dnsRules(listeners) }

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
