/// fwctl's ipsets as `ipset save` lists them: each set's type (in the renderer's words:
/// "hash:ip family inet timeout 0") and its members, sorted. Hash sizes, seeds and element
/// timeouts are left out: they are not part of what a policy says.
struct IpsetState: Equatable {
    struct SetState: Equatable {
        var spec: String
        var members: [String]
    }

    var sets: [String: SetState] = [:]

    init(save text: String, prefix: String) {
        for raw in text.split(separator: "\n") {
            let parts = raw.split(separator: " ").map(String.init)
            guard parts.count >= 3, parts[1].hasPrefix(prefix) else { continue }
            let name = parts[1]
            if parts[0] == "create" {
                var spec = parts[2]
                if let i = parts.firstIndex(of: "family"), i + 1 < parts.count { spec += " family \(parts[i + 1])" }
                if parts.contains("timeout") { spec += " timeout 0" }
                sets[name, default: SetState(spec: spec, members: [])].spec = spec
            } else if parts[0] == "add" {
                sets[name, default: SetState(spec: "", members: [])].members.append(parts[2])
            }
        }
        for name in sets.keys { sets[name]?.members.sort() }
    }

    /// `create`/`add` lines, sorted by set, for a diff.
    var text: String {
        sets.keys.sorted().map { name in
            let s = sets[name]!
            return (["create \(name) \(s.spec)"] + s.members.map { "add \(name) \($0)" }).joined(separator: "\n") + "\n"
        }.joined()
    }
}
