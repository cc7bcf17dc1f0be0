/// Addresses no public host should have: where a proxied connection must never go, however
/// a name resolved (DNS rebinding), unless a `cidr` allow names them. The proxy's dial-time
/// guard checks every resolved address against them, and the firewall keeps the proxy user
/// out of them, so the same list is enforced twice and written once.
public enum GuardedRanges {
    /// Most specific first (metadata before link-local), each with the name a refusal gives.
    public static let all: [(cidr: CIDR, name: String)] = [
        ("169.254.169.254/32", "cloud metadata"),
        ("100.100.100.200/32", "cloud metadata"),
        ("168.63.129.16/32", "cloud metadata"),
        ("fd00:ec2::254/128", "cloud metadata"),
        ("0.0.0.0/8", "unspecified"),
        ("::/128", "unspecified"),
        ("127.0.0.0/8", "loopback"),
        ("::1/128", "loopback"),
        ("169.254.0.0/16", "link-local"),
        ("fe80::/10", "link-local"),
        ("224.0.0.0/4", "multicast"),
        ("ff00::/8", "multicast"),
        ("255.255.255.255/32", "broadcast"),
    ].map { text, name in (CIDR.literal(text), name) }

    /// The ranges of one family, merged: what a kernel set holds.
    public static func merged(_ family: AddressFamily) -> [CIDR] {
        CIDRSet.merge(all.map(\.cidr).filter { $0.family == family })
    }
}
