import CNetfilter
#if canImport(Glibc)
import Glibc
#endif

/// Network namespaces. Only FWNetlink enters one: the CLI calls `enter` once, before it
/// starts any thread of its own, so DNS resolution and netlink both happen inside.
public enum NetworkNamespace {
    /// `spec` is a name under /run/netns or a path such as /proc/PID/ns/net.
    public static func path(for spec: String) -> String {
        spec.contains("/") ? spec : "/run/netns/\(spec)"
    }

    /// Moves the calling thread (and every thread it creates later) into the namespace.
    public static func enter(_ spec: String) throws(NetlinkError) {
        let path = path(for: spec)
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            let e = errno
            if e == EACCES || e == EPERM { throw .permission("network namespace \(spec)") }
            throw .noNamespace("network namespace \(spec): cannot open \(path): \(String(cString: strerror(e)))")
        }
        defer { close(fd) }
        guard fwctl_setns_net(fd) == 0 else {
            let e = errno
            if e == EPERM { throw .permission("entering network namespace \(spec)") }
            throw .noNamespace("network namespace \(spec): \(path) is not a network namespace (\(String(cString: strerror(e))))")
        }
    }
}
