import Foundation
import FWPolicy
import FWRender
import FWRuleset

/// What went wrong on the iptables path; the CLI maps each to an exit code.
public enum IptablesError: Error, CustomStringConvertible {
    /// A tool refused the change (exit 4); nothing of it stayed.
    case refused(String)
    /// The tools are missing or cannot run (exit 4 too: the kernel path failed).
    case unavailable(String)

    public var description: String {
        switch self { case .refused(let s), .unavailable(let s): return s }
    }
}

/// fwctl's ruleset on a host whose firewall is iptables: `iptables-restore` /
/// `ip6tables-restore --noflush` and `ipset restore`, in fwctl's own chains
/// (`TABLE-output`, `TABLE-input`, `TABLE-transparent`, `TABLE-dns_filter`) and sets
/// (`TABLE-...`), each chain hooked from its built-in chain by exactly one jump. Nothing
/// else in the tables is touched: Docker's rules stay.
///
/// Replacing is atomic per table: the new sets are built under temporary names and
/// swapped in (`ipset swap`), and each family's chains are replaced in one restore, which
/// the kernel commits whole. Both restores are tested (`--test`) before anything changes;
/// a later failure swaps the sets back and restores the family already done.
public struct IptablesBackend: Sendable {
    public let choice: IptablesFlavour.Choice
    /// fwctl's table name: the prefix of its chains and sets ("fwctl-").
    public let table: String

    public init(choice: IptablesFlavour.Choice, table: String) {
        self.choice = choice
        self.table = table
    }

    var prefix: String { "\(table)-" }
    var tools: IptablesFlavour.Tools { choice.tools }

    /// The apply record as the first rule of the output chain: a comment, no target.
    static let recordComment = "fwctl-record: "

    // MARK: - Reading

    /// What the kernel holds of fwctl's, per family, and its sets.
    public struct Live: Equatable {
        var v4: [OwnedSection]
        var v6: [OwnedSection]
        var sets: IptablesState
        typealias IptablesState = IpsetState

        public var isEmpty: Bool { v4.isEmpty && v6.isEmpty && sets.sets.isEmpty }

        /// The apply record's text, when there is one.
        public var record: String? {
            for r in (v4 + v6).flatMap(\.rules) {
                if let range = r.line.range(of: "--comment \"\(IptablesBackend.recordComment)") {
                    return String(r.line[range.upperBound...].prefix { $0 != "\"" })
                }
            }
            return nil
        }

        /// For a diff or status: the sets, then each family's jumps and rules. `counters`:
        /// with each rule's [packets:bytes].
        public func text(counters: Bool = false) -> String {
            var out = "# ipset\n" + sets.text
            for (name, sections) in [("iptables", v4), ("ip6tables", v6)] {
                for s in sections {
                    out += "# \(name) \(s.table)\n"
                    for j in s.jumps { out += "-A \(j.builtin) -j \(j.chain)\n" }
                    for r in s.rules where !r.line.contains(IptablesBackend.recordComment) {
                        out += (counters ? (r.counters.map { $0 + " " } ?? "") : "") + r.line + "\n"
                    }
                }
            }
            return out
        }
    }

    public func read(counters: Bool = false) throws(IptablesError) -> Live {
        let c = counters ? ["-c"] : []
        let v4 = try run([tools.save4] + c, what: "reading iptables")
        let v6 = try run([tools.save6] + c, what: "reading ip6tables")
        let sets = try run([tools.ipset, "save"], what: "reading ipsets")
        return Live(v4: OwnedSection.owned(SaveFile(v4.stdout), prefix: prefix),
                    v6: OwnedSection.owned(SaveFile(v6.stdout), prefix: prefix),
                    sets: IpsetState(save: sets.stdout, prefix: prefix))
    }

    /// Whether fwctl's chains or sets are in place (in this flavour).
    public func present() throws(IptablesError) -> Bool { try !read().isEmpty }

    /// The flavours whose IPv4 filter table holds fwctl's output chain: a quick look, one
    /// `iptables-save` per installed flavour, for `--backend auto`.
    public static func inPlace(table: String) -> [IptablesFlavour] {
        IptablesFlavour.allCases.filter { f in
            guard let tools = f.tools, let r = try? Subprocess.run([tools.save4, "-t", "filter"]), r.ok else { return false }
            return r.stdout.contains("\n:\(IptablesRenderer.chainName("output", table: table)) ")
        }
    }

    /// The ruleset as the kernel would hold it, in the same words as `read`: loaded into a
    /// throwaway network namespace (`unshare --net`) and saved back, so the comparison
    /// with the live state needs no parser of iptables' option syntax.
    public func canonical(_ r: Ruleset) throws(IptablesError) -> Live {
        guard let unshare = IptablesFlavour.find("unshare") else {
            throw .unavailable("unshare (util-linux) is missing: needed to compare with the live rules")
        }
        let parts = IptablesRenderer().parts(r)
        let dir = NSTemporaryDirectory() + "fwctl-canonical-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        do {
            try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: false,
                                                    attributes: [.posixPermissions: 0o700])
            try parts.ipset.write(toFile: dir + "/sets", atomically: false, encoding: .utf8)
            try parts.ipv4.write(toFile: dir + "/v4", atomically: false, encoding: .utf8)
            try parts.ipv6.write(toFile: dir + "/v6", atomically: false, encoding: .utf8)
        } catch {
            throw .unavailable("cannot write to \(dir): \(error)")
        }
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let script = """
            \(tools.ipset) restore < \(dir)/sets && \(tools.restore4) --noflush < \(dir)/v4 && \
            \(tools.restore6) --noflush < \(dir)/v6 && echo '@@v4' && \(tools.save4) && echo '@@v6' && \
            \(tools.save6) && echo '@@ipset' && \(tools.ipset) save
            """
        let result = try run([unshare, "--net", "--", "/bin/sh", "-c", script], what: "loading the ruleset in a scratch namespace")
        let text = result.stdout
        guard let a = text.range(of: "@@v4\n"), let b = text.range(of: "@@v6\n"), let c = text.range(of: "@@ipset\n") else {
            throw .unavailable("unexpected output from the scratch namespace")
        }
        return Live(v4: OwnedSection.owned(SaveFile(String(text[a.upperBound..<b.lowerBound])), prefix: prefix),
                    v6: OwnedSection.owned(SaveFile(String(text[b.upperBound..<c.lowerBound])), prefix: prefix),
                    sets: IpsetState(save: String(text[c.upperBound...]), prefix: prefix))
    }

    // MARK: - Applying

    /// Replaces fwctl's chains and sets with `r`'s. `record`: the apply record, kept as a
    /// comment rule. `test: true` is `apply --check`: everything is validated, nothing kept.
    public func apply(_ r: Ruleset, record: String?, test: Bool = false) throws(IptablesError) {
        let renderer = IptablesRenderer()
        let sets = renderer.ipsets(r)
        let before = try read()
        for s in sets {
            if let old = before.sets.sets[s.name], old.spec != s.spec {
                throw .refused("ipset \(s.name) exists as \(old.spec), not \(s.spec); remove it first (fwctl reset --backend iptables)")
            }
        }
        // 1. The new sets under temporary names; the final names made (empty) where new,
        //    so the rules below can name them.
        let temporary = Dictionary(uniqueKeysWithValues: sets.map { ($0.name, IptablesRenderer.ipsetName("tmp-\($0.name)", table: table)) })
        let created = sets.filter { before.sets.sets[$0.name] == nil }.map(\.name)
        var build = ""
        for s in sets {
            build += "create \(temporary[s.name]!) \(s.spec)\n" + s.members.map { "add \(temporary[s.name]!) \($0)\n" }.joined()
        }
        for s in sets where created.contains(s.name) { build += "create \(s.name) \(s.spec)\n" }
        // Temporary sets a failed run left behind go first.
        let leftovers = sets.map { temporary[$0.name]! }.filter { before.sets.sets[$0] != nil }
        try ipset(leftovers.map { "destroy \($0)\n" }.joined(), what: "removing leftover temporary ipsets")
        do {
            try ipset(build, what: "building the new ipsets")
        } catch {
            cleanUp(Array(temporary.values) + created)
            throw error
        }

        // 2. Both families' restores, tested before anything changes.
        let target4 = renderer.sections(r.table, family: .ipv4), target6 = renderer.sections(r.table, family: .ipv6)
        let input4 = Self.restoreInput(target: target4, live: before.v4, record: record)
        let input6 = Self.restoreInput(target: target6, live: before.v6, record: nil)
        do {
            try restore(tools.restore4, input4, test: true, what: "iptables-restore")
            try restore(tools.restore6, input6, test: true, what: "ip6tables-restore")
        } catch {
            cleanUp(Array(temporary.values) + created)
            throw error
        }
        if test {
            cleanUp(Array(temporary.values) + created)
            return
        }

        // 3. Swap the contents in, then the chains; undo on failure.
        let swaps = sets.map { "swap \(temporary[$0.name]!) \($0.name)\n" }.joined()
        try ipset(swaps, what: "swapping the new ipsets in")
        do {
            try restore(tools.restore4, input4, test: false, what: "iptables-restore")
        } catch {
            try? ipset(swaps, what: "swapping the old ipsets back")
            cleanUp(Array(temporary.values) + created)
            throw error
        }
        do {
            try restore(tools.restore6, input6, test: false, what: "ip6tables-restore")
        } catch {
            let back = Self.restoreInput(target: Self.sections(of: before.v4), live: try read().v4, record: nil)
            try? restore(tools.restore4, back, test: false, what: "iptables-restore (undo)")
            try? ipset(swaps, what: "swapping the old ipsets back")
            cleanUp(Array(temporary.values) + created)
            throw error
        }

        // 4. The old contents (now under the temporary names) and sets no rule names now.
        let wanted = Set(sets.map(\.name))
        cleanUp(Array(temporary.values) + before.sets.sets.keys.filter { !wanted.contains($0) && !temporary.values.contains($0) })
    }

    /// Removes fwctl's chains (and the jumps into them) and sets, and nothing else; false
    /// when there was nothing.
    @discardableResult
    public func reset() throws(IptablesError) -> Bool {
        let live = try read()
        guard !live.isEmpty else { return false }
        try restore(tools.restore4, Self.restoreInput(target: [], live: live.v4, record: nil), test: false, what: "iptables-restore")
        try restore(tools.restore6, Self.restoreInput(target: [], live: live.v6, record: nil), test: false, what: "ip6tables-restore")
        try ipset(live.sets.sets.keys.sorted().map { "destroy \($0)\n" }.joined(), what: "removing fwctl's ipsets")
        return true
    }

    /// One restore input that turns `live` (fwctl's part of one family now) into `target`:
    /// per table, every chain of either is declared (which creates or flushes it), every
    /// jump into them is deleted and the target's jumps inserted, the target's rules
    /// appended, and chains only `live` has deleted. The kernel commits each table whole.
    static func restoreInput(target: [IptablesRenderer.Section], live: [OwnedSection], record: String?) -> String {
        let tables = target.map(\.table) + live.map(\.table).filter { t in !target.contains { $0.table == t } }
        var out = ""
        for name in tables {
            let want = target.first { $0.table == name }
            let have = live.first { $0.table == name }
            let wanted = want?.chains ?? []
            let stale = (have?.chains ?? []).filter { !wanted.contains($0) }
            out += "*\(name)\n"
            for c in wanted + stale { out += ":\(c) - [0:0]\n" }
            for j in have?.jumps ?? [] { out += "-D \(j.builtin) -j \(j.chain)\n" }
            for h in want?.hooks ?? [] { out += "-I \(h.builtin) -j \(h.chain)\n" }
            if let record, name == "filter", let first = wanted.first {
                let clean = record.filter { $0 != "\"" && $0 != "\\" && $0 != "\n" }
                out += "-A \(first) -m comment --comment \"\(recordComment)\(clean)\"\n"
            }
            for r in want?.rules ?? [] { out += r + "\n" }
            for c in stale { out += "-X \(c)\n" }
            out += "COMMIT\n"
        }
        return out
    }

    /// The live state as a target, to put it back: its jumps in `-I` order (the reverse of
    /// evaluation order), its rules as saved.
    static func sections(of live: [OwnedSection]) -> [IptablesRenderer.Section] {
        live.map { s in
            IptablesRenderer.Section(table: s.table, chains: s.chains,
                                     hooks: s.jumps.reversed().map { .init(builtin: $0.builtin, chain: $0.chain) },
                                     rules: s.rules.map(\.line))
        }
    }

    // MARK: - Tools

    private func restore(_ tool: String, _ input: String, test: Bool, what: String) throws(IptablesError) {
        guard !input.isEmpty else { return }
        let r = try run([tool, "--noflush"] + (test ? ["--test"] : []), input: input, what: what)
        _ = r
    }

    private func ipset(_ input: String, what: String) throws(IptablesError) {
        guard !input.isEmpty else { return }
        _ = try run([tools.ipset, "restore"], input: input, what: what)
    }

    /// Best effort: sets that may not exist are skipped.
    private func cleanUp(_ names: [String]) {
        let present = (try? read().sets.sets) ?? [:]
        let input = names.filter { present[$0] != nil }.map { "destroy \($0)\n" }.joined()
        _ = try? run([tools.ipset, "restore"], input: input, what: "cleaning up")
    }

    @discardableResult
    private func run(_ argv: [String], input: String = "", what: String) throws(IptablesError) -> Subprocess.Result {
        let r: Subprocess.Result
        do { r = try Subprocess.run(argv, input: input) } catch { throw .unavailable("\(what): \(error)") }
        guard r.ok else { throw .refused("\(what) (\((argv[0] as NSString).lastPathComponent)) refused: \(r.firstError)") }
        return r
    }
}
