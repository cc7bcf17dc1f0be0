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

    func run() throws {
        let loaded = try Pipeline.load(policy)
        let ruleset = Compiler.compile(try Pipeline.compileInput(loaded, offline: offline))
        switch format {
        case .nft: print(NftRenderer().render(ruleset), terminator: "")
        case .iptables: print(IptablesRenderer().render(ruleset), terminator: "")
        case .json: print(JSONRenderer().render(ruleset), terminator: "")
        }
    }
}
