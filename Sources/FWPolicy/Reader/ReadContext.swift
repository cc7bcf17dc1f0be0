/// Collects diagnostics while the policy is read, so every error is reported at once.
final class ReadContext {
    let file: String
    let lazyLocator: LazySourceLocator
    var locator: SourceLocator { lazyLocator.locator }
    /// The directory relative paths in the policy (github_meta) are taken from.
    let baseDirectory: String
    private(set) var diagnostics: [Diagnostic] = []

    init(file: String, text: String, baseDirectory: String) {
        self.file = file
        self.lazyLocator = LazySourceLocator(text: text)
        self.baseDirectory = baseDirectory
    }

    /// An error about the value at `path` (located at the value).
    func error(_ path: KeyPath, _ message: String) {
        add(.error, path, message, at: locator.valueLocation(path))
    }

    /// An error about the key itself (unknown key, missing key: located at the key or table).
    func keyError(_ path: KeyPath, _ message: String) {
        add(.error, path, message, at: locator.keyLocation(path))
    }

    func warning(_ path: KeyPath, _ message: String) {
        add(.warning, path, message, at: locator.keyLocation(path))
    }

    private func add(_ s: Diagnostic.Severity, _ path: KeyPath, _ message: String, at loc: SourceLocation?) {
        diagnostics.append(Diagnostic(s, file: file, location: loc, path: path, message: message))
    }

    var hasErrors: Bool { diagnostics.contains { $0.severity == .error } }

    /// Errors and warnings in file order, errors first where they share a place.
    var sortedDiagnostics: [Diagnostic] {
        diagnostics.enumerated().sorted { a, b in
            let la = a.element.location ?? SourceLocation(line: .max, column: 0)
            let lb = b.element.location ?? SourceLocation(line: .max, column: 0)
            return la != lb ? la < lb : a.offset < b.offset
        }.map(\.element)
    }
}

/// Reads one TOML table: typed getters that report wrong types, and `finish()` that
/// reports every key nobody asked for (unknown keys are errors: a typo must not
/// silently weaken a firewall).
final class TableReader {
    let path: KeyPath
    let ctx: ReadContext
    private let entries: [String: TOMLNode]
    private let allowed: [String]

    init(_ entries: [String: TOMLNode], at path: KeyPath, allowed: [String], ctx: ReadContext) {
        self.entries = entries
        self.path = path
        self.allowed = allowed
        self.ctx = ctx
    }

    /// Returns nil (after an error) when `node` is not a table.
    static func make(_ node: TOMLNode, at path: KeyPath, allowed: [String], ctx: ReadContext) -> TableReader? {
        guard case .table(let t) = node else {
            ctx.error(path, "expected a table, found \(node.kindName)")
            return nil
        }
        return TableReader(t, at: path, allowed: allowed, ctx: ctx)
    }

    func has(_ key: String) -> Bool { entries[key] != nil }
    func node(_ key: String) -> TOMLNode? { entries[key] }

    func string(_ key: String) -> String? {
        guard let n = entries[key] else { return nil }
        if case .string(let s) = n { return s }
        ctx.error(path.key(key), "expected a string, found \(n.kindName)")
        return nil
    }

    func bool(_ key: String) -> Bool? {
        guard let n = entries[key] else { return nil }
        if case .boolean(let b) = n { return b }
        ctx.error(path.key(key), "expected true or false, found \(n.kindName)")
        return nil
    }

    /// An integer in `range`; the error names the range.
    func int(_ key: String, in range: ClosedRange<Int>) -> Int? {
        guard let n = entries[key] else { return nil }
        guard case .integer(let i) = n else {
            ctx.error(path.key(key), "expected an integer, found \(n.kindName)")
            return nil
        }
        guard range.contains(i) else {
            ctx.error(path.key(key), "\(i) is out of range (allowed: \(range.lowerBound)-\(range.upperBound))")
            return nil
        }
        return i
    }

    /// One of a fixed set of strings.
    func choice<E: RawRepresentable & CaseIterable>(_ key: String, _ type: E.Type) -> E? where E.RawValue == String {
        guard let s = string(key) else { return nil }
        if let e = E(rawValue: s) { return e }
        let names = E.allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")
        ctx.error(path.key(key), "\"\(s)\" is not allowed (allowed: \(names))")
        return nil
    }

    /// An array; each element is handed to `element` with its path.
    func array<T>(_ key: String, nonEmpty: Bool = false, _ element: (TOMLNode, KeyPath) -> T?) -> [T]? {
        guard let n = entries[key] else { return nil }
        guard case .array(let items) = n else {
            ctx.error(path.key(key), "expected an array, found \(n.kindName)")
            return nil
        }
        if nonEmpty && items.isEmpty {
            ctx.error(path.key(key), "must not be empty")
            return nil
        }
        var out: [T] = []
        var ok = true
        for (i, item) in items.enumerated() {
            if let v = element(item, path.key(key).index(i)) { out.append(v) } else { ok = false }
        }
        return ok ? out : nil
    }

    /// Array of strings.
    func strings(_ key: String, nonEmpty: Bool = false) -> [String]? {
        array(key, nonEmpty: nonEmpty) { node, p in
            if case .string(let s) = node { return s }
            ctx.error(p, "expected a string, found \(node.kindName)")
            return nil
        }
    }

    /// Reports unknown keys; call after every known key was read.
    func finish() {
        for key in entries.keys.sorted() where !allowed.contains(key) {
            var msg = "unknown key (allowed here: \(allowed.joined(separator: ", ")))"
            if let near = allowed.min(by: { editDistance($0, key) < editDistance($1, key) }),
               editDistance(near, key) <= max(2, key.count / 3) {
                msg = "unknown key; did you mean \"\(near)\"? (allowed here: \(allowed.joined(separator: ", ")))"
            }
            ctx.keyError(path.key(key), msg)
        }
    }
}

/// Levenshtein distance, for "did you mean" hints on short keys.
func editDistance(_ a: String, _ b: String) -> Int {
    let a = Array(a), b = Array(b)
    if a.isEmpty { return b.count }
    if b.isEmpty { return a.count }
    var prev = Array(0...b.count)
    for i in 1...a.count {
        var cur = [i] + Array(repeating: 0, count: b.count)
        for j in 1...b.count {
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (a[i - 1] == b[j - 1] ? 0 : 1))
        }
        prev = cur
    }
    return prev[b.count]
}
