import XCTest
import FWTestSupport

/// What the sandbox can reach, probed with real clients, once the lab policy is enforced.
final class ReachabilityTests: LabTestCase {
    /// The lab itself: without a firewall every probe of the matrix gets through, so each
    /// refusal below is the firewall's doing.
    func testWithoutAFirewallEverythingIsReachable() throws {
        for host in [A.api, A.api6, A.ssh, A.cdn, A.blocked] {
            for port in Lab.Port.tcp { try expectTCP(host, port, .connected) }
            try expectUDP(host, 443, .answered)
        }
        try expectTCP("api.lab.test", 443, .connected, family: .v6)
        try expectTCP("www.lab.test", 443, .connected)
        for tcp in [false, true] {
            for server in [A.resolver, A.rogueResolver] {
                try expectDNS("www.lab.test", "A", server: server, tcp: tcp, ["cdn.lab.test.", A.cdn])
            }
        }
        for host in [A.resolver, A.resolver6] { try expectTCP(host, Lab.Port.hostNetwork, .connected) }
    }

    /// `fwctl compile` loaded with `nft -f`: the compiled rules on their own.
    func testCompiledRulesetLoadedWithNft() throws {
        try loadCompiled(try write(LabPolicy()))
        try assertLabPolicyEnforced()
    }

    func testCompiledRulesetWithHostNetworkLoadedWithNft() throws {
        try loadCompiled(try write(LabPolicy(hostNetwork: true)))
        try assertLabPolicyEnforced(hostNetwork: true)
    }

    func testApplyWithNetns() throws {
        try apply(try write(LabPolicy()))
        try assertLabPolicyEnforced()
    }

    func testApplyFromInside() throws {
        try apply(try write(LabPolicy()), from: .inside)
        try assertLabPolicyEnforced()
    }

    func testApplyWithHostNetwork() throws {
        try apply(try write(LabPolicy(hostNetwork: true)))
        try assertLabPolicyEnforced(hostNetwork: true)
    }

    /// `egress = "drop"`: what is not allowed times out instead of failing fast.
    func testApplyWithDropEgress() throws {
        try apply(try write(LabPolicy(egress: "drop")))
        try expectTCP("api.lab.test", 443, .connected)
        try expectTCP(A.api, 80, .timeout, timeout: 1)
        try expectTCP(A.api6, 80, .timeout, timeout: 1)
    }
}
