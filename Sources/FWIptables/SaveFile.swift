/// `iptables-save` output, read: per table, its chains and rules in order. Only what
/// fwctl needs: chain names, and each rule's chain, text and counters.
struct SaveFile: Equatable {
    struct Rule: Equatable {
        var chain: String
        /// As saved, without the counters: "-A OUTPUT -j fwctl-output".
        var line: String
        /// "[packets:bytes]" with `-c`.
        var counters: String?
    }

    struct TableSection: Equatable {
        var name: String
        var chains: [String] = []
        var rules: [Rule] = []
    }

    var tables: [TableSection] = []

    init(_ text: String) {
        var current: TableSection?
        for raw in text.split(separator: "\n") {
            let line = raw.trimmingCharacters(in: .whitespaces)
            if line.hasPrefix("*") {
                current = TableSection(name: String(line.dropFirst()))
            } else if line == "COMMIT" {
                if let c = current { tables.append(c) }
                current = nil
            } else if line.hasPrefix(":") {
                let name = line.dropFirst().split(separator: " ").first.map(String.init) ?? ""
                current?.chains.append(name)
            } else {
                var body = Substring(line)
                var counters: String?
                if body.hasPrefix("["), let close = body.firstIndex(of: "]") {
                    counters = String(body[...close])
                    body = body[body.index(after: close)...].drop { $0 == " " }
                }
                let parts = body.split(separator: " ", maxSplits: 2)
                guard parts.count >= 2, parts[0] == "-A" else { continue }
                current?.rules.append(Rule(chain: String(parts[1]), line: String(body), counters: counters))
            }
        }
    }

    func table(_ name: String) -> TableSection? { tables.first { $0.name == name } }
}

/// fwctl's part of one table in one family: its chains, the jumps into them from built-in
/// chains (in evaluation order), and their rules.
struct OwnedSection: Equatable {
    var table: String
    var chains: [String]
    /// (built-in chain, fwctl chain), in the order the kernel evaluates them.
    var jumps: [(builtin: String, chain: String)]
    var rules: [SaveFile.Rule]

    static func == (a: Self, b: Self) -> Bool {
        a.table == b.table && a.chains == b.chains && a.rules == b.rules
            && a.jumps.map { "\($0.builtin) \($0.chain)" } == b.jumps.map { "\($0.builtin) \($0.chain)" }
    }

    /// What of `file` belongs to fwctl's table `prefix` ("fwctl-"): chains named so, and
    /// plain jumps (`-A BUILTIN -j CHAIN`, nothing else on the line) into them.
    static func owned(_ file: SaveFile, prefix: String) -> [OwnedSection] {
        file.tables.compactMap { t in
            let chains = t.chains.filter { $0.hasPrefix(prefix) }
            guard !chains.isEmpty else { return nil }
            let mine = Set(chains)
            var jumps: [(builtin: String, chain: String)] = []
            var rules: [SaveFile.Rule] = []
            for r in t.rules {
                if mine.contains(r.chain) {
                    rules.append(r)
                } else if let target = jumpTarget(r.line), mine.contains(target) {
                    jumps.append((r.chain, target))
                }
            }
            return OwnedSection(table: t.name, chains: chains, jumps: jumps, rules: rules)
        }
    }

    /// "-A OUTPUT -j fwctl-output" -> "fwctl-output".
    static func jumpTarget(_ line: String) -> String? {
        let parts = line.split(separator: " ")
        guard parts.count == 4, parts[0] == "-A", parts[2] == "-j" else { return nil }
        return String(parts[3])
    }
}
