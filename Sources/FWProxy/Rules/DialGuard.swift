import FWPolicy

/// The dial-time guard against DNS rebinding: after the proxy has resolved an upstream name,
/// it refuses to connect to an address no public host should have, unless a `cidr` (or
/// `github_meta`) allow in the policy covers that address.
///
/// Refused: unspecified and "this network" (0.0.0.0/8, ::), loopback (127.0.0.0/8, ::1),
/// link-local (169.254.0.0/16, fe80::/10), multicast (224.0.0.0/4, ff00::/8), limited
/// broadcast (255.255.255.255), and the cloud metadata addresses (169.254.169.254,
/// fd00:ec2::254, Alibaba's 100.100.100.200, Azure's wire server 168.63.129.16).
/// IPv6 forms that carry an IPv4 address (IPv4-mapped ::ffff:0:0/96, IPv4-translated
/// ::ffff:0:0:0/96, IPv4-compatible ::/96, NAT64 64:ff9b::/96) are judged by that address.
public struct DialGuard: Sendable {
    /// The prefixes of the policy's cidr and github_meta allows, with their ports.
    private let allowed: [(cidr: CIDR, ports: [PortRange])]

    public init(policy: Policy) {
        allowed = policy.allows.flatMap { rule in rule.cidrs.map { (cidr: $0, ports: rule.ports) } }
    }

    /// nil when the proxy may dial `address` (what `host` resolved to); otherwise a
    /// `.dangerousAddress` 403 naming the host, the address and the range. When `port` is
    /// given, a covering allow must list that port too.
    public func check(_ address: IPAddress, host: String, port: UInt16? = nil) -> Refusal? {
        guard let range = DialGuard.dangerousRange(of: address) else { return nil }
        let embedded = DialGuard.embeddedIPv4(address)
        let covered = allowed.contains { entry in
            (entry.cidr.contains(address) || embedded.map(entry.cidr.contains) == true)
                && (port.map { p in entry.ports.contains { $0.contains(p) } } ?? true)
        }
        if covered { return nil }
        return Refusal(.dangerousAddress,
            "\(Refusal.quote(host)) resolved to \(address) (\(range)); the proxy does not dial it unless a cidr allow covers it")
    }

    /// The name of the dangerous range `address` falls in, or nil.
    public static func dangerousRange(of address: IPAddress) -> String? {
        if let v4 = embeddedIPv4(address) {
            return dangerousRange(of: v4).map { "\($0), embedded in IPv6" }
        }
        for (cidr, name) in ranges where cidr.contains(address) { return name }
        return nil
    }

    /// The one list, shared with the firewall's rules for the proxy user.
    private static let ranges = GuardedRanges.all

    private static let carriers: [CIDR] = ["::ffff:0:0/96", "::ffff:0:0:0/96", "64:ff9b::/96"].map { text in
        guard case .success(let c) = CIDR.parse(text) else { preconditionFailure("bad range \(text)") }
        return c
    }

    /// The IPv4 address inside an IPv6 address that carries one; nil otherwise. IPv4-
    /// compatible (::a.b.c.d) counts, but :: and ::1 stay themselves.
    static func embeddedIPv4(_ a: IPAddress) -> IPAddress? {
        guard a.family == .ipv6 else { return nil }
        let low = IPAddress(family: .ipv4, value: a.value & 0xffff_ffff)
        if carriers.contains(where: { $0.contains(a) }) { return low }
        if a.value >> 32 == 0, a.value > 1 { return low }
        return nil
    }
}
