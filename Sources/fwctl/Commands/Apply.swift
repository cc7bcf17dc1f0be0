import ArgumentParser
import FWIptables
import FWNetlink
import FWRender
import FWRuleset
#if canImport(Glibc)
import Glibc
#endif

struct Apply: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Replace fwctl's table with the policy's ruleset, in one atomic transaction.")

    @Argument(help: "The policy file (TOML).") var policy: String
    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Show the diff against the live table; change nothing.") var dryRun = false
    @Flag(help: "Let the kernel validate the whole transaction, then abort it; change nothing.") var check = false

    func run() throws {
        try kernel.prepare("apply", iptables: true)
        let loaded = try Pipeline.load(policy)
        let ruleset = try Compiled.ruleset(loaded)
        let name = ruleset.table.name
        if case .iptables(let backend) = try kernel.choose("apply", table: name) {
            try applyWithIptables(ruleset, backend)
            return
        }
        do {
            if dryRun {
                let diff = Compiled.diff(live: try KernelReader.read(table: name), compiled: ruleset, color: isatty(1) == 1)
                print(diff.isEmpty ? "no changes: the live table inet \(name) matches the policy" : diff, terminator: diff.isEmpty ? "\n" : "")
                return
            }
            try Kernel.apply(ruleset, commit: !check)
        } catch {
            throw KernelFailure.report("apply", error)
        }
        let sets = ruleset.table.sets
        let rules = ruleset.table.chains.reduce(0) { $0 + $1.rules.count }
        let elements = sets.reduce(0) { $0 + $1.elements.count }
        let summary = "table inet \(name): \(ruleset.table.chains.count) chains, \(rules) rules, \(sets.count) sets, \(elements) elements"
        print(check ? "check passed: the kernel accepts \(summary); nothing was changed" : "applied \(summary)")
    }

    func applyWithIptables(_ ruleset: Ruleset, _ backend: IptablesBackend) throws {
        let tool = "iptables-\(backend.choice.flavour.rawValue)"
        do {
            if dryRun {
                let diff = Compiled.diff(live: try backend.read(), compiled: try backend.canonical(ruleset), backend: backend,
                                         color: isatty(1) == 1)
                print(diff.isEmpty ? "no changes: fwctl's \(tool) rules match the policy" : diff, terminator: diff.isEmpty ? "\n" : "")
                return
            }
            try backend.apply(ruleset, record: ruleset.table.comment, test: check)
        } catch {
            throw KernelFailure.report("apply", error)
        }
        let sets = ruleset.table.sets
        let summary = "\(ruleset.table.chains.count) chains and \(sets.count) ipsets of table \(ruleset.table.name) with \(tool)"
        print(check ? "check passed: \(tool) accepts \(summary); nothing was changed" : "applied \(summary)")
    }
}
