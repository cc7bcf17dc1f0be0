import ArgumentParser
import FWBuildInfo

struct FWCtl: ParsableCommand {
    static let version = "0.1.0"
    /// The git commit of a packaged build (scripts/package), or "unknown".
    static let commit = String(cString: fwctl_git_commit())

    static let configuration = CommandConfiguration(
        commandName: "fwctl",
        abstract: "An egress firewall for sandboxes: one declarative policy, compiled to nftables.",
        discussion: """
        Exit codes: 0 done; 1 differences found or a check failed; 2 usage or policy error;
        3 a required name did not resolve; 4 the kernel refused; 5 missing privilege.
        """,
        version: "fwctl \(version) (commit \(commit))",
        subcommands: [Check.self, Resolve.self, Compile.self, Apply.self, Diff.self, Status.self, Reset.self, Watch.self, Up.self, Proxy.self, CA.self, Env.self]
    )
}

/// The contract's exit codes.
enum Exit: Int32 {
    case ok = 0
    case differences = 1
    case usage = 2
    case unresolved = 3
    case kernelRefused = 4
    case privilege = 5

    var code: ExitCode { ExitCode(rawValue) }
}
