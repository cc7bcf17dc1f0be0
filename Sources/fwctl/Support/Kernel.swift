import ArgumentParser
import Foundation
import FWNetlink
import FWPolicy
import FWRender
import FWRuleset

/// `--netns` and `--backend`, shared by the commands that touch the kernel.
struct KernelOptions: ParsableArguments {
    @Option(name: .long, help: "A network namespace: a name under /run/netns or a path such as /proc/PID/ns/net.")
    var netns: String?

    @Option(help: "nft (netlink), iptables, or auto (nft where the kernel has nf_tables).")
    var backend: Backend = .auto

    enum Backend: String, ExpressibleByArgument, CaseIterable { case nft, iptables, auto }

    /// Enters the namespace (before any DNS or netlink work, so both happen inside) and
    /// checks the backend and the privilege. `command` names the caller in messages.
    func prepare(_ command: String, needsPrivilege: Bool = true) throws {
        if backend == .iptables {
            Output.error("fwctl \(command): --backend iptables is not available yet; use nft (the default)")
            throw Exit.usage.code
        }
        if let ns = netns {
            do { try NetworkNamespace.enter(ns) } catch { throw KernelFailure.report(command, error) }
            let perNamespace = "/etc/netns/\(ns)/resolv.conf"
            if !ns.contains("/"), FileManager.default.fileExists(atPath: perNamespace) { Pipeline.resolvConf = perNamespace }
        }
        if needsPrivilege && !Privilege.hasNetAdmin() {
            Output.error("fwctl \(command): needs root or CAP_NET_ADMIN\(netns.map { " (in network namespace \($0))" } ?? "")")
            throw Exit.privilege.code
        }
    }
}

/// Maps kernel-path errors to one line and the contract's exit code.
enum KernelFailure {
    static func report(_ command: String, _ error: NetlinkError) -> ExitCode {
        switch error {
        case .permission:
            Output.error("fwctl \(command): \(error)")
            return Exit.privilege.code
        case .refused, .generationChanged:
            Output.error("fwctl \(command): \(error); nothing was changed")
            return Exit.kernelRefused.code
        case .noNamespace:
            Output.error("fwctl \(command): \(error)")
            return Exit.usage.code
        case .system:
            Output.error("fwctl \(command): \(error)")
            return Exit.kernelRefused.code
        }
    }
}

/// The compiled ruleset of a policy, stamped with its apply record.
enum Compiled {
    static func ruleset(_ loaded: LoadedPolicy) throws -> Ruleset {
        var r = Compiler.compile(try Pipeline.compileInput(loaded, offline: false, forKernel: true))
        let absolute = URL(fileURLWithPath: loaded.path).standardizedFileURL.path
        let record = ApplyRecord(version: FWCtl.version, appliedAt: UTCTimestamp.now(),
                                 policySHA256: SHA256.hex(loaded.text.utf8), policyPath: absolute)
        r.table.comment = record.comment
        return r
    }

    /// The live table against the compiled one, as a unified diff ("" when equal).
    static func diff(live: Ruleset?, compiled: Ruleset, color: Bool) -> String {
        let renderer = NftRenderer(options: .comparison)
        let name = compiled.table.name
        // What the reader found but the IR cannot hold (a foreign set, a dormant table) is
        // part of the live side, so it shows as a difference instead of hiding.
        let liveText = live.map { r in r.notes.map { "# live: \($0)\n" }.joined() + renderer.render(r) } ?? ""
        return UnifiedDiff(color: color).render(old: liveText,
                                                new: renderer.render(compiled),
                                                oldLabel: live == nil ? "live: no table inet \(name)" : "live: table inet \(name)",
                                                newLabel: "policy: table inet \(name)")
    }
}
