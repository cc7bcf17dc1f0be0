import Foundation

/// Whether this process may change nf_tables: CAP_NET_ADMIN in its effective set.
public enum Privilege {
    static let capNetAdmin = 12

    public static func hasNetAdmin() -> Bool {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8),
              let line = status.split(separator: "\n").first(where: { $0.hasPrefix("CapEff:") }),
              let caps = UInt64(line.dropFirst("CapEff:".count).trimmingCharacters(in: .whitespaces), radix: 16) else {
            return geteuid() == 0
        }
        return caps & (1 << UInt64(capNetAdmin)) != 0
    }
}
