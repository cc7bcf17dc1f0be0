import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// The lab's DNS server whose records change during a test (`Lab.startDynamicDNS`).
public final class DynamicDNS {
    /// Outside, on its loopback; the sandbox reaches it through its default route.
    public static let address = "198.51.100.53"
    /// Addresses the test's names rotate through; all answer TCP on `port`.
    public static let pool4 = "203.0.113.128/25"
    public static let pool6 = "2001:db8:99::/64"
    public static let port = 9443

    unowned let lab: Lab
    let hostsFile: String
    public let ttl: Int
    private var daemon: Daemon?

    init(lab: Lab, hostsFile: String, ttl: Int) {
        self.lab = lab
        self.hostsFile = hostsFile
        self.ttl = ttl
    }

    /// Replaces the hosts file (lines "ADDRESS NAME"); `reload()` makes dnsmasq read it.
    public func write(_ hosts: String) throws {
        try hosts.write(toFile: hostsFile, atomically: true, encoding: .utf8)
    }

    /// dnsmasq re-reads its hosts files on SIGHUP.
    public func reload() { daemon?.signal(SIGHUP) }

    /// SIGSTOP: the server stops answering (queries time out); SIGCONT resumes it.
    public func pause() { daemon?.signal(SIGSTOP) }
    public func resume() { daemon?.signal(SIGCONT) }

    /// A new dnsmasq with these CNAMEs ("alias,target"): dnsmasq reads them only at start.
    public func restart(cnames: [String]) throws {
        if let d = daemon {
            d.signal(SIGCONT)
            d.stop()
        }
        daemon = try lab.spawnDynamicDNS(self, cnames: cnames)
    }

    /// Every query dnsmasq logged so far.
    public var log: String { daemon?.output ?? "" }
}
