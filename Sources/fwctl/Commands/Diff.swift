import ArgumentParser
import FWNetlink
#if canImport(Glibc)
import Glibc
#endif

struct Diff: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show how the live table differs from the policy's ruleset (unified diff).")

    @Argument(help: "The policy file (TOML).") var policy: String
    @OptionGroup var kernel: KernelOptions
    @Flag(help: "Exit 1 when there are differences.") var exitCode = false

    func run() throws {
        // Reading the ruleset needs CAP_NET_ADMIN too.
        try kernel.prepare("diff", iptables: true)
        let loaded = try Pipeline.load(policy)
        let ruleset = try Compiled.ruleset(loaded)
        let diff: String
        switch try kernel.choose("diff", table: ruleset.table.name) {
        case .nft:
            do {
                diff = Compiled.diff(live: try KernelReader.read(table: ruleset.table.name), compiled: ruleset, color: isatty(1) == 1)
            } catch {
                throw KernelFailure.report("diff", error)
            }
        case .iptables(let backend):
            do {
                diff = Compiled.diff(live: try backend.read(), compiled: try backend.canonical(ruleset), backend: backend,
                                     color: isatty(1) == 1)
            } catch {
                throw KernelFailure.report("diff", error)
            }
        }
        print(diff, terminator: "")
        if exitCode && !diff.isEmpty { throw Exit.differences.code }
    }
}
