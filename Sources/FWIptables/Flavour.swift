import Foundation

/// Which iptables a host uses: the legacy xtables kernel interface, or iptables-nft
/// (the same commands over nf_tables). Rules loaded with one are invisible to the other,
/// so fwctl must use the flavour the host's other rules (Docker's, ...) use.
public enum IptablesFlavour: String, Sendable, CaseIterable {
    case legacy, nft

    /// The tools of this flavour; `ipset` is the same for both.
    public struct Tools: Sendable {
        public let restore4, restore6, save4, save6, ipset: String
    }

    static let directories = ["/usr/sbin", "/sbin", "/usr/bin", "/bin"]

    static func find(_ name: String) -> String? {
        directories.map { "\($0)/\(name)" }.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// nil when a tool is missing (then the flavour cannot be used here).
    public var tools: Tools? {
        guard let r4 = Self.find("iptables-\(rawValue)-restore"), let r6 = Self.find("ip6tables-\(rawValue)-restore"),
              let s4 = Self.find("iptables-\(rawValue)-save"), let s6 = Self.find("ip6tables-\(rawValue)-save"),
              let ipset = Self.find("ipset") else { return nil }
        return Tools(restore4: r4, restore6: r6, save4: s4, save6: s6, ipset: ipset)
    }

    public struct Choice: Sendable {
        public let flavour: IptablesFlavour
        public let tools: Tools
        /// Why this flavour, for the user: "iptables-nft: 12 rules in place, 0 in legacy".
        public let reason: String

        /// This flavour, when its tools are installed.
        public init?(_ flavour: IptablesFlavour, reason: String) {
            guard let tools = flavour.tools else { return nil }
            self.flavour = flavour
            self.tools = tools
            self.reason = reason
        }

        init(flavour: IptablesFlavour, tools: Tools, reason: String) {
            self.flavour = flavour
            self.tools = tools
            self.reason = reason
        }
    }

    public struct Unavailable: Error, CustomStringConvertible {
        public let description: String
    }

    /// The flavour that holds the host's rules now (the one with more rules, as
    /// Kubernetes' iptables-wrapper decides); on a tie, the one `iptables` itself is.
    /// `FWCTL_IPTABLES_FLAVOUR=legacy|nft` forces it.
    public static func detect() throws -> Choice {
        if let forced = ProcessInfo.processInfo.environment["FWCTL_IPTABLES_FLAVOUR"] {
            guard let f = IptablesFlavour(rawValue: forced) else {
                throw Unavailable(description: "FWCTL_IPTABLES_FLAVOUR=\(forced): allowed are legacy and nft")
            }
            guard let tools = f.tools else { throw Unavailable(description: "iptables-\(f.rawValue) and ipset are not all installed") }
            return Choice(flavour: f, tools: tools, reason: "FWCTL_IPTABLES_FLAVOUR=\(forced)")
        }
        let available = allCases.compactMap { f in f.tools.map { (f, $0) } }
        guard !available.isEmpty else {
            throw Unavailable(description: "neither iptables-legacy nor iptables-nft (with ipset) is installed (apt-get install iptables ipset)")
        }
        if available.count == 1 {
            let (f, t) = available[0]
            return Choice(flavour: f, tools: t, reason: "iptables-\(f.rawValue) is the only flavour installed")
        }
        let counts = available.map { f, t in (f, t, ruleCount(t)) }
        let byCount = counts.sorted { $0.2 > $1.2 }
        if byCount[0].2 != byCount[1].2 {
            return Choice(flavour: byCount[0].0, tools: byCount[0].1,
                          reason: "iptables-\(byCount[0].0.rawValue) holds \(byCount[0].2) rules, iptables-\(byCount[1].0.rawValue) \(byCount[1].2)")
        }
        let version = (try? Subprocess.run([find("iptables") ?? "/usr/sbin/iptables", "--version"]).stdout) ?? ""
        let f: IptablesFlavour = version.contains("legacy") ? .legacy : .nft
        let t = counts.first { $0.0 == f }!.1
        return Choice(flavour: f, tools: t, reason: "no rules in either flavour; `iptables` is iptables-\(f.rawValue)")
    }

    /// Rules (`-A` lines) in every table of both families.
    static func ruleCount(_ t: Tools) -> Int {
        [t.save4, t.save6].reduce(0) { n, save in
            n + ((try? Subprocess.run([save]).stdout) ?? "").split(separator: "\n").filter { $0.hasPrefix("-A ") }.count
        }
    }
}
