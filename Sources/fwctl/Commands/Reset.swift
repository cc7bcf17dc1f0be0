import ArgumentParser
import FWNetlink

struct Reset: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Remove fwctl's table, and nothing else.")

    @OptionGroup var kernel: KernelOptions
    @Option(help: "The table to remove (firewall.table of the policy).") var table = "fwctl"

    func run() throws {
        try kernel.prepare("reset", iptables: true)
        if case .iptables(let backend) = try kernel.choose("reset", table: table, findEither: true) {
            do {
                let existed = try backend.reset()
                let tool = "iptables-\(backend.choice.flavour.rawValue)"
                print(existed ? "removed fwctl's chains and ipsets of table \(table) from \(tool)" : "no chains or ipsets of table \(table) in \(tool); nothing to remove")
            } catch {
                throw KernelFailure.report("reset", error)
            }
            return
        }
        do {
            let existed = try Kernel.reset(table: table)
            print(existed ? "removed table inet \(table)" : "no table inet \(table); nothing to remove")
        } catch {
            throw KernelFailure.report("reset", error)
        }
    }
}
