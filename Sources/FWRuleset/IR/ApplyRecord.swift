/// When, from which policy and by which fwctl a table was applied. It is kept with the
/// table itself (its comment), so `status` cannot drift from what is loaded.
public struct ApplyRecord: Sendable, Equatable {
    public var version: String
    /// UTC, ISO 8601 ("2026-11-29T18:53:31Z").
    public var appliedAt: String
    public var policySHA256: String
    public var policyPath: String

    public init(version: String, appliedAt: String, policySHA256: String, policyPath: String) {
        self.version = version
        self.appliedAt = appliedAt
        self.policySHA256 = policySHA256
        self.policyPath = policyPath
    }

    /// The kernel keeps at most 255 bytes of comment; a long path keeps its end.
    public static let maxLength = 254

    /// `fwctl 0.1.0 applied 2026-11-29T18:53:31Z sha256 <hex> <path>`
    public var comment: String {
        let head = "fwctl \(version) applied \(appliedAt) sha256 \(policySHA256) "
        let room = Self.maxLength - head.utf8.count
        var path = policyPath
        if path.utf8.count > room { path = "..." + String(path.utf8.suffix(max(0, room - 3)))! }
        return head + path
    }

    public init?(comment: String) {
        let parts = comment.split(separator: " ", maxSplits: 6, omittingEmptySubsequences: false).map(String.init)
        guard parts.count == 7, parts[0] == "fwctl", parts[2] == "applied", parts[4] == "sha256" else { return nil }
        self.init(version: parts[1], appliedAt: parts[3], policySHA256: parts[5], policyPath: parts[6])
    }
}
