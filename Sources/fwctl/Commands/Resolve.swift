import ArgumentParser
import FWPolicy
import FWRender
import FWResolve

struct Resolve: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Resolve the policy's host names: addresses, TTL, CNAME chain.")

    @Argument(help: "The policy file (TOML).") var policy: String
    @Flag(help: "Print the results as JSON on stdout.") var json = false

    func run() throws {
        let loaded = try Pipeline.load(policy)
        let servers = try Pipeline.dnsServers(loaded)
        // Everything found is printed; a required name that failed still means exit 3.
        let (resolution, failed) = Pipeline.resolve(loaded, servers: servers)
        if json {
            print(jsonReport(resolution, policy: loaded.policy, servers: servers).render(), terminator: "")
        } else {
            print(table(resolution), terminator: "")
        }
        if failed { throw Exit.unresolved.code }
    }

    func table(_ r: Resolution) -> String {
        var out = ""
        for n in r.results {
            let addrs = n.addresses.map(\.description).joined(separator: " ")
            let ttl = n.ttl.map { "ttl=\($0)" } ?? "-"
            var line = "\(n.name)\t\(n.status.rawValue)\t\(ttl)\t\(addrs.isEmpty ? "-" : addrs)"
            if !n.chain.isEmpty { line += "\tvia " + n.chain.joined(separator: " -> ") }
            if let d = n.detail { line += "\t(\(d))" }
            out += line + "\n"
        }
        return out
    }

    func jsonReport(_ r: Resolution, policy: Policy, servers: [SocketEndpoint]) -> JSONValue {
        .object([
            ("schema", .string("fwctl.resolve/1")),
            ("servers", .array(servers.map { .string($0.description) })),
            ("names", .array(r.results.map { n in
                .object([
                    ("name", .string(n.name)),
                    ("status", .string(n.status.rawValue)),
                    ("optional", .bool(policy.isOptional(n.name))),
                    ("ttl", n.ttl.map { .int(Int64($0)) } ?? .null),
                    ("addresses", .array(n.addresses.map { .string($0.description) })),
                    ("chain", .array(n.chain.map(JSONValue.string))),
                    ("detail", n.detail.map(JSONValue.string) ?? .null),
                ])
            })),
        ])
    }
}
