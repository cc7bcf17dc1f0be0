import FWPolicy

/// What the proxy does for an allowed host: one `[[allow]]` with `via = "proxy"` and a host.
public struct ProxyEntry: Sendable, Equatable {
    /// Position in the policy: `allow[index]`.
    public var index: Int
    public var host: HostPattern
    public var ports: [PortRange]
    /// nil: any method. Upper case, as the policy reader stores them.
    public var methods: [String]?
    /// Path globs; nil: any path.
    public var paths: [String]?
    public var inject: [Inject]

    public init(index: Int, host: HostPattern, ports: [PortRange], methods: [String]? = nil,
                paths: [String]? = nil, inject: [Inject] = []) {
        self.index = index
        self.host = host
        self.ports = ports
        self.methods = methods
        self.paths = paths
        self.inject = inject
    }

    /// From a policy allow; nil unless it is `via = "proxy"` with a host.
    public init?(_ rule: AllowRule) {
        guard rule.via == .proxy, case .host(let h) = rule.target else { return nil }
        self.init(index: rule.index, host: h, ports: rule.ports, methods: rule.methods,
                  paths: rule.paths, inject: rule.inject)
    }

    /// No methods, paths or inject: the tunnel is spliced (bytes glued, never decrypted).
    public var splices: Bool { methods == nil && paths == nil && inject.isEmpty }

    /// "allow[3]", the way the policy and the access log name it.
    public var label: String { "allow[\(index)]" }

    public func allowsPort(_ port: UInt16) -> Bool { ports.contains { $0.contains(port) } }
}
