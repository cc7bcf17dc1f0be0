import ArgumentParser
import FWPolicy
import FWResolve
import FWRuleset
import Foundation

/// The steps commands share: load the policy, find the resolvers, resolve the names.
/// Each step prints its own diagnostics and throws the contract's exit code on failure.
enum Pipeline {
    static func load(_ path: String) throws -> LoadedPolicy {
        do {
            let loaded = try PolicyReader.load(path: path)
            Output.diagnostics(loaded.warnings)
            return loaded
        } catch {
            Output.diagnostics(error.diagnostics)
            throw Exit.usage.code
        }
    }

    /// The resolv.conf used when the policy names no servers. Like the network namespace,
    /// it belongs to the whole process: `--netns NAME` points it at /etc/netns/NAME/resolv.conf
    /// when that exists, as `ip netns exec` does.
    nonisolated(unsafe) static var resolvConf = "/etc/resolv.conf"

    /// `dns.servers`, else the nameservers of resolv.conf.
    static func dnsServers(_ loaded: LoadedPolicy) throws -> [SocketEndpoint] {
        if let s = loaded.policy.dns.servers { return s }
        do {
            return try SystemResolvers.nameservers(resolvConf: resolvConf)
        } catch {
            Output.error("\(loaded.path): dns.servers is not set and \(error)")
            throw Exit.usage.code
        }
    }

    /// Resolves every direct host name and reports each failure: required names as errors,
    /// optional ones as warnings (they are left out). `requiredFailed` means exit 3.
    static func resolve(_ loaded: LoadedPolicy, servers: [SocketEndpoint]) -> (resolution: Resolution, requiredFailed: Bool) {
        let names = loaded.policy.directHostNames
        let dns = loaded.policy.dns
        // The mark exempts fwctl's own queries from the DNS filter's redirect (where the
        // process may set it: root or CAP_NET_ADMIN; elsewhere the queries go unmarked).
        let resolver = Resolver(options: ResolverOptions(servers: servers, timeoutMs: dns.timeoutMs, attempts: dns.attempts,
                                                         mark: DNSSettings.filterMark))
        let resolution = resolver.resolve(names) { done, total in
            Output.progress("resolving \(done)/\(total) names")
        }
        Output.endProgress()
        var failed = false
        // In policy order, so the lines read top to bottom like the file.
        let order = Dictionary(loaded.policy.directHostNames.enumerated().map { ($1, $0) }, uniquingKeysWith: min)
        for r in resolution.failures.sorted(by: { order[$0.name, default: .max] < order[$1.name, default: .max] }) {
            let optional = loaded.policy.isOptional(r.name)
            let status = r.status.rawValue.uppercased()
            let why = r.detail.map { $0.uppercased() == status ? status : "\(status): \($0)" } ?? status
            let path = hostPath(loaded.policy, r.name)
            let message = optional
                ? "\"\(r.name)\" did not resolve (\(why)); optional, left out"
                : "\"\(r.name)\" did not resolve (\(why))"
            Output.error(loaded.diagnostic(optional ? .warning : .error, at: path, message).description)
            failed = failed || !optional
        }
        return (resolution, failed)
    }

    /// The key path of the first allow entry naming `host`.
    static func hostPath(_ p: Policy, _ host: String) -> KeyPath {
        let i = p.allows.first { if case .host(let h) = $0.target { return h.name == host }; return false }?.index ?? 0
        return KeyPath([.key("allow"), .index(i), .key("host")])
    }

    /// The input to the compiler. `offline`: DNS is not asked and host sets stay empty.
    /// `forKernel`: the rules go to a kernel, so a `proxy.user` given by name must exist here
    /// (exit 2 otherwise, before any DNS); a rendering keeps an unknown name as a name.
    static func compileInput(_ loaded: LoadedPolicy, offline: Bool, forKernel: Bool = false) throws -> CompileInput {
        let uid = try proxyUID(loaded, required: forKernel)
        let servers = try dnsServers(loaded)
        var addresses: [String: [IPAddress]]?
        if !offline {
            let (res, failed) = resolve(loaded, servers: servers)
            if failed { throw Exit.unresolved.code }
            addresses = Dictionary(uniqueKeysWithValues: res.results.filter(\.isResolved).map { ($0.name, $0.addresses) })
        }
        let networks = loaded.policy.firewall.hostNetwork ? LocalNetworks.current() : []
        return CompileInput(policy: loaded.policy, dnsServers: servers, hostAddresses: addresses, hostNetworks: networks,
                            proxyUID: uid)
    }

    /// The uid of `proxy.user` when it is given by name and this host knows it.
    static func proxyUID(_ loaded: LoadedPolicy, required: Bool) throws -> UInt32? {
        guard case .name(let name)? = loaded.policy.proxy?.user else { return nil }
        if let pw = getpwnam(name) { return pw.pointee.pw_uid }
        guard required else { return nil }
        Output.error(loaded.diagnostic(.error, at: KeyPath([.key("proxy"), .key("user")]),
            "\"\(name)\" is not a user on this system (create it, e.g. useradd --system \(name), or give a numeric uid)").description)
        throw Exit.usage.code
    }
}
