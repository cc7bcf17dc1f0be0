// libFuzzer target: the policy reader and validator (PolicyReader.parse), and for a policy
// it accepts, what `fwctl compile` does with it (Compiler.compile and the three renderers),
// so a gap in validation shows as a crash downstream.
//
// The input is the policy file's bytes. Like PolicyReader.load, bytes that are not UTF-8
// are not a policy. github_meta names a file to read: the fuzzer must not read arbitrary
// files (a device, a FIFO, a huge file), so an input whose github_meta value is anything
// but a plain file name is skipped, and names resolve in a private temporary directory
// that holds only one small, valid github-meta.json.
import Foundation
@testable import FWPolicy
import FWRender
import FWRuleset

/// The base directory of github_meta paths: created once, removed at exit.
let baseDirectory: String = {
    let dir = NSTemporaryDirectory() + "/fwctl-fuzz-policy.\(getpid())"
    try? FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    let meta = #"{"web":["192.0.2.0/24","2001:db8::/32"],"api":["198.51.100.0/25","198.51.100.128/25"],"git":["203.0.113.7/32"]}"#
    _ = FileManager.default.createFile(atPath: dir + "/github-meta.json", contents: Data(meta.utf8))
    atexit { try? FileManager.default.removeItem(atPath: baseDirectory) }
    return dir
}()

/// A github_meta value the reader may open: one file name, resolved in `baseDirectory`.
func isPlainFileName(_ s: String) -> Bool {
    s != "." && s != ".." && !s.isEmpty
        && s.utf8.allSatisfy { c in
            (c >= 0x30 && c <= 0x39) || (c | 0x20 >= 0x61 && c | 0x20 <= 0x7a) || c == 0x2d || c == 0x2e || c == 0x5f
        }
}

/// False when any `github_meta` key, at any depth, holds a string that is not a plain file
/// name. Read with the reader's own TOML layer, so both see the same keys.
func githubMetaIsSafe(_ text: String) -> Bool {
    guard case .success(let root) = TOMLDocument.parse(text) else { return true } // the reader stops there
    func safe(_ node: TOMLNode) -> Bool {
        switch node {
        case .table(let t):
            for (k, child) in t {
                if k == "github_meta", case .string(let s) = child, !isPlainFileName(s) { return false }
                if !safe(child) { return false }
            }
            return true
        case .array(let a):
            return a.allSatisfy(safe)
        default:
            return true
        }
    }
    return safe(root)
}

let renderers: [(Ruleset) -> String] = [
    { NftRenderer().render($0) },
    { NftRenderer(options: .comparison).render($0) },
    { IptablesRenderer().render($0) },
    { JSONRenderer().render($0) },
]

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOne(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    guard let text = String(bytes: bytes, encoding: .utf8) else { return 0 }
    guard githubMetaIsSafe(text) else { return -1 } // -1: not added to the corpus
    let loaded: LoadedPolicy
    do {
        loaded = try PolicyReader.parse(text: text, file: "fuzz.toml", baseDirectory: baseDirectory)
    } catch {
        // Every error names the file, and rendering them (with locations) must not trap.
        precondition(!error.diagnostics.isEmpty, "a rejected policy without a diagnostic")
        precondition(error.errors.allSatisfy { $0.file == "fuzz.toml" })
        _ = error.description
        return 0
    }
    _ = loaded.warnings.map(\.description)
    // Locating a key after loading (what `fwctl apply` does for a name that did not resolve).
    for (i, _) in loaded.policy.allows.enumerated() {
        _ = loaded.diagnostic(.warning, at: KeyPath([.key("allow"), .index(i), .key("host")]), "x").description
    }
    // Compile as `fwctl compile` would, with made-up addresses for every direct host name.
    let policy = loaded.policy
    var addresses: [String: [IPAddress]] = [:]
    for (i, name) in policy.directHostNames.enumerated() {
        addresses[name] = [IPAddress(family: .ipv4, value: UInt128(0xc000_0200 + UInt32(i % 256))),
                           IPAddress(family: .ipv6, value: (UInt128(0x2001_0db8) << 96) | UInt128(i))]
    }
    let servers = policy.dns.servers ?? [SocketEndpoint(address: IPAddress("192.0.2.53")!, port: 53)]
    for hostAddresses in [addresses, nil] {
        let input = CompileInput(policy: policy, dnsServers: servers, hostAddresses: hostAddresses,
                                 hostNetworks: [CIDR(address: IPAddress("10.0.0.0")!, prefixLength: 8)!], proxyUID: 998)
        let ruleset = Compiler.compile(input)
        for render in renderers { _ = render(ruleset) }
    }
    return 0
}

#if !FUZZING
import FuzzReplay
/// Replays inputs without libFuzzer: `FuzzPolicy FILE-OR-DIR...`.
@main struct Replay {
    static func main() {
        replayInputs(Array(CommandLine.arguments.dropFirst()), target: "FuzzPolicy", fuzzOne)
    }
}
#endif
