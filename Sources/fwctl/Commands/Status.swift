import ArgumentParser
import FWIptables
import FWNetlink
import FWWatch
import Foundation
import FWRender
import FWRuleset

struct Status: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show the live table with its counters, set sizes and apply record.")

    @OptionGroup var kernel: KernelOptions
    @Option(help: "The table to show (firewall.table of the policy).") var table = "fwctl"
    @Flag(help: "Print JSON on stdout.") var json = false

    func run() throws {
        try kernel.prepare("status", iptables: true)
        if case .iptables(let backend) = try kernel.choose("status", table: table, findEither: true) {
            try iptablesStatus(backend)
            return
        }
        let live: Ruleset?
        do { live = try KernelReader.read(table: table) } catch { throw KernelFailure.report("status", error) }
        guard let r = live else {
            if json { print(JSONValue.object([("table", .string(table)), ("present", .bool(false))]).render(), terminator: "") }
            else { Output.error("fwctl status: no table inet \(table) in this network namespace") }
            throw Exit.differences.code
        }
        let record = r.table.comment.flatMap(ApplyRecord.init(comment:))
        let watch = Self.runningWatch(table: table)
        if json {
            print(report(r, record, watch: watch).render(), terminator: "")
            return
        }
        if let a = record {
            print("# applied \(a.appliedAt) by fwctl \(a.version) from \(a.policyPath) (sha256 \(a.policySHA256))")
        } else {
            print("# no apply record on this table (not applied by fwctl?)")
        }
        for s in r.table.sets { print("# set \(s.name): \(s.elements.count) element\(s.elements.count == 1 ? "" : "s")") }
        if let watch {
            print(watch.summary.text.split(separator: "\n").map { "# \($0)" }.joined(separator: "\n"))
            print("# (watch summary written \(watch.summary.writtenAt))")
        } else if r.table.sets.contains(where: { $0.flags.contains(.timeout) && !$0.hosts.isEmpty }) {
            print("# no fwctl watch runs for this table: host addresses stay as apply resolved them")
        }
        print(NftRenderer(options: .init(counters: true, notes: false, tableComment: false)).render(r), terminator: "")
    }

    func iptablesStatus(_ backend: IptablesBackend) throws {
        let live: IptablesBackend.Live
        do { live = try backend.read(counters: true) } catch { throw KernelFailure.report("status", error) }
        let tool = "iptables-\(backend.choice.flavour.rawValue)"
        let record = live.record.flatMap(ApplyRecord.init(comment:))
        if json {
            let applied: JSONValue = record.map {
                .object([("at", .string($0.appliedAt)), ("version", .string($0.version)),
                         ("policy", .string($0.policyPath)), ("sha256", .string($0.policySHA256))])
            } ?? .null
            print(JSONValue.object([("table", .string(table)), ("backend", .string(tool)), ("present", .bool(!live.isEmpty)),
                                    ("applied", applied), ("rules", .string(live.text(counters: true)))]).render(), terminator: "")
            if live.isEmpty { throw Exit.differences.code }
            return
        }
        guard !live.isEmpty else {
            Output.error("fwctl status: no chains or ipsets of table \(table) in \(tool) in this network namespace")
            throw Exit.differences.code
        }
        if let a = record {
            print("# applied \(a.appliedAt) by fwctl \(a.version) from \(a.policyPath) (sha256 \(a.policySHA256)) with \(tool)")
        } else {
            print("# \(tool): no apply record (not applied by fwctl?)")
        }
        print(live.text(counters: true), terminator: "")
    }

    /// The summary a running `fwctl watch` keeps for this namespace and table; nil when
    /// none runs (a file left by a watch that was killed names a pid that is gone).
    static func runningWatch(table: String) -> (summary: WatchSummary, json: JSONValue)? {
        let path = Watch.statePath(table: table)
        guard let data = FileManager.default.contents(atPath: path),
              let summary = try? JSONDecoder().decode(WatchSummary.self, from: data),
              Self.isWatch(summary.pid) else { return nil }
        return (summary, Self.json(summary))
    }

    static func isWatch(_ pid: Int32) -> Bool {
        let cmdline = (try? Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))) ?? Data()
        let args = cmdline.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
        return args.count >= 2 && args[0].hasSuffix("fwctl") && args[1] == "watch" && Up.running(pid)
    }

    static func json(_ s: WatchSummary) -> JSONValue {
        var fields: [(String, JSONValue)] = [
            ("pid", .int(Int64(s.pid))), ("written_at", .string(s.writtenAt)), ("policy_sha256", .string(s.policySHA256)),
            ("refreshes", .int(Int64(s.refreshes))), ("batches", .int(Int64(s.batches))), ("elements", .int(Int64(s.elements))),
            ("renew_mode", .string(s.renewMode)),
            ("names", .array(s.names.map { n in
                .object([("name", .string(n.name)), ("health", .string(n.health.rawValue)),
                         ("addresses", .array(n.addresses.map(JSONValue.string))), ("ttl", .int(Int64(n.ttl))),
                         ("next_refresh_in_s", .int(Int64(n.nextRefreshIn))), ("problem", n.problem.map(JSONValue.string) ?? .null)])
            })),
        ]
        if let f = s.filter {
            fields.append(("filter", .object([("listening", .array(f.listening.map(JSONValue.string))), ("forwarded", .int(Int64(f.forwarded))),
                                              ("refused", .int(Int64(f.refused))), ("malformed", .int(Int64(f.malformed))),
                                              ("failed", .int(Int64(f.failed)))])))
        }
        return .object(fields)
    }

    func report(_ r: Ruleset, _ a: ApplyRecord?, watch: (summary: WatchSummary, json: JSONValue)?) -> JSONValue {
        let applied: JSONValue = a.map {
            .object([("at", .string($0.appliedAt)), ("version", .string($0.version)),
                     ("policy", .string($0.policyPath)), ("sha256", .string($0.policySHA256))])
        } ?? .null
        return .object([
            ("table", .string(r.table.name)),
            ("present", .bool(true)),
            ("applied", applied),
            ("sets", .array(r.table.sets.map { .object([("name", .string($0.name)), ("elements", .int(Int64($0.elements.count)))]) })),
            ("watch", watch?.json ?? .null),
            ("ruleset", JSONRenderer().value(r)),
        ])
    }
}
