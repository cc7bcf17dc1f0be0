import ArgumentParser
import FWPolicy
import FWRender
import FWRuleset

struct Compile: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print the compiled ruleset; nothing is applied.")

    enum Format: String, ExpressibleByArgument, CaseIterable { case nft, iptables, json }

    @Argument(help: "The policy file (TOML).") var policy: String
    @Option(help: "Output format: nft, iptables or json.") var format: Format = .nft
    @Flag(help: "Do not ask DNS: host sets stay empty, with a comment naming the hosts.") var offline = false
    @Option(help: ArgumentHelp("The uid proxy.user has on the host the rules are for (default: this host's, or the name as written).",
                               valueName: "uid"))
    var proxyUid: UInt32?

    func run() throws {
        let loaded = try Pipeline.load(policy)
        var input = try Pipeline.compileInput(loaded, offline: offline)
        if let proxyUid { input.proxyUID = proxyUid }
        let ruleset = Compiler.compile(input)
        switch format {
        case .nft: print(NftRenderer().render(ruleset), terminator: "")
        case .iptables: print(IptablesRenderer().render(ruleset), terminator: "")
        case .json: print(JSONRenderer().render(ruleset), terminator: "")
        }
    }
}
