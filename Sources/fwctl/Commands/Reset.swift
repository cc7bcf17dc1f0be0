import ArgumentParser
import FWNetlink

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove fwctl's table, and nothing else.")

    @OptionGroup var kernel: KernelOptions
    @Option(help: "The table to remove (firewall.table of the policy).") var table = "fwctl"

    func run() throws {
        try kernel.prepare("reset")
        do {
            let existed = try Kernel.reset(table: table)
            print(existed ? "removed table inet \(table)" : "no table inet \(table); nothing to remove")
        } catch {
            throw KernelFailure.report("reset", error)
        }
    }
}
