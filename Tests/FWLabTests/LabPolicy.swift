import FWTestSupport

/// A policy for the lab (Tests/FWTestSupport/Lab.swift), as TOML. The defaults are the lab
/// policy the reachability matrix checks: DNS only through the lab's resolver, the API on
/// 443 by name (A and AAAA), www.lab.test (a CNAME) on 443, SSH to ssh.lab.test only, and
/// nothing for blocked.lab.test.
struct LabPolicy {
    var egress = "reject"
    var inbound = "established"
    var logDenied = true
    var hostNetwork = false
    var icmp = "essential"
    var servers = [Lab.Address.resolver]
    /// More `[dns]` lines (TOML), e.g. "min_ttl = 1".
    var dnsExtra = ""
    var allows = [
        #"host = "api.lab.test""#,
        #"host = "www.lab.test""#,
        "host = \"ssh.lab.test\"\nports = [22]",
    ]

    /// The lab policy with one more `[[allow]]` (its body as TOML lines).
    func allowing(_ body: String) -> LabPolicy {
        var copy = self
        copy.allows.append(body)
        return copy
    }

    var toml: String {
        let quoted = servers.map { "\"\($0)\"" }.joined(separator: ", ")
        return """
            version = 1

            [firewall]
            table = "fwctl"
            egress = "\(egress)"
            inbound = "\(inbound)"
            log_denied = \(logDenied)
            host_network = \(hostNetwork)
            icmp = "\(icmp)"

            [dns]
            servers = [\(quoted)]
            timeout_ms = 1000
            attempts = 2
            \(dnsExtra)
            """ + allows.map { "\n[[allow]]\n\($0)\n" }.joined()
    }
}
