import ArgumentParser
import FWNetlink
import FWRender
import FWRuleset

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the live table with its counters, set sizes and apply record.")

    @OptionGroup var kernel: KernelOptions
    @Option(help: "The table to show (firewall.table of the policy).") var table = "fwctl"
    @Flag(help: "Print JSON on stdout.") var json = false

    func run() throws {
        try kernel.prepare("status")
        let live: Ruleset?
        do { live = try KernelReader.read(table: table) } catch { throw KernelFailure.report("status", error) }
        guard let r = live else {
            if json { print(JSONValue.object([("table", .string(table)), ("present", .bool(false))]).render(), terminator: "") }
            else { Output.error("fwctl status: no table inet \(table) in this network namespace") }
            throw Exit.differences.code
        }
        let record = r.table.comment.flatMap(ApplyRecord.init(comment:))
        if json {
            print(report(r, record).render(), terminator: "")
            return
        }
        if let a = record {
            print("# applied \(a.appliedAt) by fwctl \(a.version) from \(a.policyPath) (sha256 \(a.policySHA256))")
        } else {
            print("# no apply record on this table (not applied by fwctl?)")
        }
        for s in r.table.sets { print("# set \(s.name): \(s.elements.count) element\(s.elements.count == 1 ? "" : "s")") }
        print(NftRenderer(options: .init(counters: true, notes: false, tableComment: false)).render(r), terminator: "")
    }

    func report(_ r: Ruleset, _ a: ApplyRecord?) -> JSONValue {
        let applied: JSONValue = a.map {
            .object([("at", .string($0.appliedAt)), ("version", .string($0.version)),
                     ("policy", .string($0.policyPath)), ("sha256", .string($0.policySHA256))])
        } ?? .null
        return .object([
            ("table", .string(r.table.name)),
            ("present", .bool(true)),
            ("applied", applied),
            ("sets", .array(r.table.sets.map { .object([("name", .string($0.name)), ("elements", .int(Int64($0.elements.count)))]) })),
            ("ruleset", JSONRenderer().value(r)),
        ])
    }
}
