#if canImport(Glibc)
import Glibc
#endif

/// What can go wrong on the kernel path; the CLI maps each to an exit code.
public enum NetlinkError: Error, CustomStringConvertible, Equatable {
    /// No CAP_NET_ADMIN (or CAP_SYS_ADMIN to enter a namespace): exit 5.
    case permission(String)
    /// The kernel refused part of a transaction: nothing changed. Exit 4.
    case refused(object: String, errno: Int32)
    /// Someone else changed the ruleset while fwctl was building its batch, every retry.
    case generationChanged
    /// `--netns` names no network namespace: a usage error (exit 2).
    case noNamespace(String)
    /// A socket that cannot be opened, a short read, no reply.
    case system(String)

    public var description: String {
        switch self {
        case .permission(let what): return "\(what): permission denied (needs root or CAP_NET_ADMIN)"
        case .refused(let object, let e): return "\(object): kernel refused: \(String(cString: strerror(e)))"
        case .generationChanged: return "the ruleset changed under fwctl on every attempt; nothing was applied"
        case .noNamespace(let s), .system(let s): return s
        }
    }
}
