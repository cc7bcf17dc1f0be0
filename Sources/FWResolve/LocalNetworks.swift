#if canImport(Glibc)
import Glibc
#endif
import FWPolicy

/// This host's own interface subnets (for `firewall.host_network`): the real prefixes of
/// its addresses, not a /24 guess. Loopback and link-local are left out: loopback has its
/// own rule, and link-local holds the cloud metadata range.
public enum LocalNetworks {
    public static func current() -> [CIDR] {
        var head: UnsafeMutablePointer<ifaddrs>?
        guard getifaddrs(&head) == 0, let first = head else { return [] }
        defer { freeifaddrs(head) }
        var out: [CIDR] = []
        var p: UnsafeMutablePointer<ifaddrs>? = first
        while let ifa = p {
            defer { p = ifa.pointee.ifa_next }
            guard let addr = ifa.pointee.ifa_addr, let mask = ifa.pointee.ifa_netmask,
                  let a = address(addr), let m = address(mask) else { continue }
            let len = m.value.nonzeroBitCount
            let net = IPAddress(family: a.family, value: a.value & m.value)
            guard let cidr = CIDR(address: net, prefixLength: len),
                  !a.isLoopback, !a.isLinkLocal else { continue }
            out.append(cidr)
        }
        return CIDRSet.merge(out)
    }

    static func address(_ sa: UnsafeMutablePointer<sockaddr>) -> IPAddress? {
        switch Int32(sa.pointee.sa_family) {
        case AF_INET:
            return sa.withMemoryRebound(to: sockaddr_in.self, capacity: 1) {
                IPAddress(family: .ipv4, value: UInt128(UInt32(bigEndian: $0.pointee.sin_addr.s_addr)))
            }
        case AF_INET6:
            return sa.withMemoryRebound(to: sockaddr_in6.self, capacity: 1) { p in
                var addr = p.pointee.sin6_addr
                return withUnsafeBytes(of: &addr) { IPAddress(bytes: Array($0)) }
            }
        default: return nil
        }
    }
}
