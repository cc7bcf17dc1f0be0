import ArgumentParser
import FWPolicy
import FWRender

struct Check: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Validate a policy: every error at once, no DNS, no kernel.")

    @Argument(help: "The policy file (TOML).") var policy: String
    @Flag(help: "Print the findings as JSON on stdout.") var json = false

    func run() throws {
        let result: Result<LoadedPolicy, PolicyError>
        do { result = .success(try PolicyReader.load(path: policy)) } catch { result = .failure(error) }
        switch result {
        case .success(let loaded):
            if json { print(report(ok: true, loaded.warnings).render(), terminator: "") } else {
                Output.diagnostics(loaded.warnings)
                print("\(policy): ok (\(summary(loaded.policy)))")
            }
        case .failure(let e):
            if json { print(report(ok: false, e.diagnostics).render(), terminator: "") } else {
                Output.diagnostics(e.diagnostics)
                let n = e.errors.count
                Output.error("\(policy): \(n) error\(n == 1 ? "" : "s")")
            }
            throw Exit.usage.code
        }
    }

    func summary(_ p: Policy) -> String {
        let direct = p.allows.filter { $0.via == .direct }
        let hosts = Set(p.directHostNames).count
        let prefixes = direct.reduce(0) { $0 + $1.cidrs.count }
        let proxied = p.allows.count - direct.count
        return "\(p.allows.count) allow entries: \(hosts) host\(hosts == 1 ? "" : "s"), \(prefixes) prefix\(prefixes == 1 ? "" : "es"), \(proxied) via proxy"
    }

    func report(ok: Bool, _ ds: [Diagnostic]) -> JSONValue {
        .object([
            ("ok", .bool(ok)),
            ("diagnostics", .array(ds.map { d in
                .object([
                    ("severity", .string(d.severity.rawValue)),
                    ("file", .string(d.file)),
                    ("line", d.location.map { .int(Int64($0.line)) } ?? .null),
                    ("column", d.location.map { .int(Int64($0.column)) } ?? .null),
                    ("path", d.path.map { .string($0.description) } ?? .null),
                    ("message", .string(d.message)),
                ])
            })),
        ])
    }
}
