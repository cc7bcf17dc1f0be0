/// Turns the TOML tree into a `Policy`, one section at a time. Each check reports through
/// the context and reading goes on, so one run names every error.
struct PolicyDecoder {
    let ctx: ReadContext

    func decode(_ root: TOMLNode) -> Policy {
        var policy = Policy()
        guard let top = TableReader.make(root, at: KeyPath(), allowed: ["version", "firewall", "dns", "proxy", "allow"], ctx: ctx) else {
            return policy
        }
        if !top.has("version") {
            ctx.keyError(KeyPath("version"), "missing; a policy starts with version = 1")
        } else if let v = top.int("version", in: Int.min...Int.max), v != 1 {
            ctx.error(KeyPath("version"), "version \(v) is not supported (allowed: 1)")
        }
        if let n = top.node("firewall"), let t = TableReader.make(n, at: "firewall", allowed: Self.firewallKeys, ctx: ctx) {
            policy.firewall = firewall(t)
        }
        if let n = top.node("dns"), let t = TableReader.make(n, at: "dns", allowed: Self.dnsKeys, ctx: ctx) {
            policy.dns = dns(t)
        }
        if let n = top.node("proxy"), let t = TableReader.make(n, at: "proxy", allowed: Self.proxyKeys, ctx: ctx) {
            policy.proxy = ProxyDecoder(ctx: ctx).decode(t)
        }
        if let allows = top.array("allow", { node, path in
            TableReader.make(node, at: path, allowed: AllowDecoder.keys, ctx: ctx)
        }) {
            let decoder = AllowDecoder(ctx: ctx, hasProxy: policy.proxy != nil)
            policy.allows = allows.enumerated().compactMap { decoder.decode($1, index: $0) }
            DuplicateCheck(ctx: ctx).run(policy.allows)
        } else if !top.has("allow") {
            ctx.warning(KeyPath(), "no [[allow]] entries: only loopback, replies and DNS will be allowed")
        }
        top.finish()
        return policy
    }

    static let firewallKeys = ["table", "egress", "inbound", "log_denied", "host_network", "icmp"]
    static let dnsKeys = ["servers", "timeout_ms", "attempts", "min_ttl", "max_ttl", "filter", "filter_port"]
    static let proxyKeys = ["listen", "user", "transparent", "transparent_port", "ca_dir", "ca_cert",
                            "upstream_ca", "max_body_bytes", "access_log", "endpoint"]

    private func firewall(_ t: TableReader) -> FirewallSettings {
        var f = FirewallSettings()
        if let name = t.string("table") {
            if Self.isValidTableName(name) { f.table = name } else {
                t.ctx.error(t.path.key("table"), "\"\(name)\" is not a valid table name (allowed: a letter, then letters, digits or _; at most 27 characters)")
            }
        }
        if let e = t.choice("egress", FirewallSettings.Egress.self) { f.egress = e }
        if let i = t.choice("inbound", FirewallSettings.Inbound.self) { f.inbound = i }
        if let b = t.bool("log_denied") { f.logDenied = b }
        if let b = t.bool("host_network") { f.hostNetwork = b }
        if let i = t.choice("icmp", FirewallSettings.ICMP.self) { f.icmp = i }
        t.finish()
        return f
    }

    /// nft identifiers allow more, but the name also prefixes iptables chains and ipset
    /// names (at most 31 bytes), so fwctl keeps it short and plain.
    static func isValidTableName(_ s: String) -> Bool {
        guard let first = s.unicodeScalars.first, s.unicodeScalars.count <= 27,
              first.isASCII, first.properties.isAlphabetic else { return false }
        return s.unicodeScalars.allSatisfy { $0.isASCII && ($0.properties.isAlphabetic || ("0"..."9").contains($0) || $0 == "_") }
    }

    private func dns(_ t: TableReader) -> DNSSettings {
        var d = DNSSettings()
        if let servers = t.array("servers", nonEmpty: true, { node, path -> SocketEndpoint? in
            guard case .string(let s) = node else {
                ctx.error(path, "expected a string such as \"127.0.0.11\" or \"[2001:db8::53]:5353\", found \(node.kindName)")
                return nil
            }
            switch SocketEndpoint.parse(s, defaultPort: 53) {
            case .success(let e): return e
            case .failure(let e): ctx.error(path, e.description); return nil
            }
        }) {
            d.servers = servers
            var seen = Set<SocketEndpoint>()
            for (i, s) in servers.enumerated() where !seen.insert(s).inserted {
                ctx.warning(t.path.key("servers").index(i), "\(s) is listed twice")
            }
        }
        if let v = t.int("timeout_ms", in: 1...60_000) { d.timeoutMs = v }
        if let v = t.int("attempts", in: 1...10) { d.attempts = v }
        if let v = t.int("min_ttl", in: 1...86_400) { d.minTTL = v }
        if let v = t.int("max_ttl", in: 1...604_800) { d.maxTTL = v }
        if d.minTTL > d.maxTTL {
            ctx.error(t.path.key("min_ttl"), "min_ttl \(d.minTTL) is greater than max_ttl \(d.maxTTL)")
        }
        if let b = t.bool("filter") { d.filter = b }
        if let p = t.int("filter_port", in: 1...65535) { d.filterPort = UInt16(p) }
        t.finish()
        return d
    }
}
