import Foundation
import FWPolicy
import FWRuleset

/// The policies every renderer and the kernel tests share: the bundled ones compiled
/// offline, and lab policies with a fixed resolution (Tests/FWRulesetTests/Fixtures).
public enum GoldenCases {
    public struct Case: Sendable {
        public var name: String
        public var policy: String
        public var resolved: Bool
    }

    static let rulesetTests = Paths.packageRoot.appendingPathComponent("Tests/FWRulesetTests")
    public static let golden = rulesetTests.appendingPathComponent("Golden")
    public static let fixtures = rulesetTests.appendingPathComponent("Fixtures")

    /// The host's subnets, fixed for tests (the CLI reads the real interfaces).
    public static let hostNetworks = ["192.0.2.0/24", "2001:db8:1::/64"].map { try! CIDR.parse($0).get() }

    public static let all = [
        Case(name: "claude-code", policy: Paths.policies("claude-code.toml"), resolved: false),
        Case(name: "strict", policy: Paths.policies("strict.toml"), resolved: false),
        Case(name: "lab", policy: fixtures.appendingPathComponent("lab.toml").path, resolved: true),
        Case(name: "drop-open", policy: fixtures.appendingPathComponent("drop-open.toml").path, resolved: true),
        Case(name: "transparent", policy: fixtures.appendingPathComponent("transparent.toml").path, resolved: true),
        Case(name: "sidecar", policy: fixtures.appendingPathComponent("sidecar.toml").path, resolved: true),
        Case(name: "dns-filter", policy: fixtures.appendingPathComponent("dns-filter.toml").path, resolved: true),
    ]

    public static func resolution() throws -> [String: [IPAddress]] {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("resolution.json"))
        let raw = try JSONDecoder().decode([String: [String]].self, from: data)
        return raw.mapValues { $0.compactMap(IPAddress.init) }
    }

    /// The uid every golden case gives `proxy.user` "fwproxy" (`fwctl compile --proxy-uid`),
    /// so the renderings load into a kernel on any machine.
    public static let proxyUID: UInt32 = 4242

    public static func compile(_ c: Case) throws -> Ruleset {
        let loaded = try PolicyReader.load(path: c.policy)
        let input = CompileInput(policy: loaded.policy, dnsServers: loaded.policy.dns.servers ?? [],
                                 hostAddresses: c.resolved ? try resolution() : nil, hostNetworks: hostNetworks,
                                 proxyUID: proxyUID)
        return Compiler.compile(input)
    }
}
