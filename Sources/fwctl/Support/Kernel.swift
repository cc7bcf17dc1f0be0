import ArgumentParser
import Foundation
import FWIptables
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
    func prepare(_ command: String, needsPrivilege: Bool = true, iptables: Bool = false) throws {
        if backend == .iptables && !iptables {
            Output.error("fwctl \(command): --backend iptables is for apply, diff, status and reset; \(command) needs nftables (--backend nft)")
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

/// The backend a kernel command uses, once chosen.
enum ChosenBackend {
    case nft
    case iptables(IptablesBackend)
}

extension KernelOptions {
    /// `--backend` as given, or auto: nftables over netlink where the kernel has nf_tables,
    /// iptables otherwise (saying so). Auto refuses to go on when fwctl's rules are in place
    /// in the other backend: mixing two backends in one namespace needs an explicit choice.
    /// `findEither` (status, reset): auto goes where fwctl's rules are, in either backend.
    /// Call after `prepare` (inside the namespace).
    func choose(_ command: String, table: String, findEither: Bool = false) throws -> ChosenBackend {
        switch backend {
        case .nft:
            return .nft
        case .iptables:
            return .iptables(try iptablesBackend(command, table: table, announce: true))
        case .auto:
            let nft = FWNetlink.Kernel.available()
            // fwctl's chains in either iptables flavour (the tools may not be installed).
            let flavours = IptablesBackend.inPlace(table: table)
            let inIptables = flavours.map { "iptables-\($0.rawValue)" }
            if nft {
                if findEither, flavours.count == 1, (try? FWNetlink.Kernel.tableExists(table)) == false,
                   let choice = IptablesFlavour.Choice(flavours[0], reason: "fwctl's rules are there") {
                    Output.error("fwctl \(command): fwctl's rules for table \(table) are in \(inIptables[0]) here: using the iptables backend")
                    return .iptables(IptablesBackend(choice: choice, table: table))
                }
                if let found = inIptables.first {
                    Output.error("fwctl \(command): fwctl's rules for table \(table) are in place in \(found) here; give --backend iptables to keep using them, or --backend nft to move (then remove the old ones: fwctl reset --backend iptables)")
                    throw Exit.usage.code
                }
                return .nft
            }
            Output.error("fwctl \(command): this kernel has no nf_tables: using the iptables backend")
            return .iptables(try iptablesBackend(command, table: table, announce: true))
        }
    }

    private func iptablesBackend(_ command: String, table: String, announce: Bool) throws -> IptablesBackend {
        let choice: IptablesFlavour.Choice
        do { choice = try IptablesFlavour.detect() } catch {
            Output.error("fwctl \(command): \(error)")
            throw Exit.kernelRefused.code
        }
        if announce { Output.error("fwctl \(command): iptables backend: iptables-\(choice.flavour.rawValue) (\(choice.reason))") }
        return IptablesBackend(choice: choice, table: table)
    }
}

/// Maps kernel-path errors to one line and the contract's exit code.
enum KernelFailure {
    static func report(_ command: String, _ error: IptablesError) -> ExitCode {
        switch error {
        case .refused(let what): Output.error("fwctl \(command): \(what); nothing was changed")
        case .unavailable(let what): Output.error("fwctl \(command): \(what)")
        }
        return Exit.kernelRefused.code
    }

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

    /// fwctl's live iptables rules and ipsets against the policy's, loaded the same way.
    static func diff(live: IptablesBackend.Live, compiled: IptablesBackend.Live, backend: IptablesBackend, color: Bool) -> String {
        let tool = "iptables-\(backend.choice.flavour.rawValue)"
        return UnifiedDiff(color: color).render(old: live.text(), new: compiled.text(),
                                                oldLabel: live.isEmpty ? "live: nothing of table \(backend.table) in \(tool)" : "live: \(tool), table \(backend.table)",
                                                newLabel: "policy: \(tool), table \(backend.table)")
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
