import Foundation

/// A line and column in the policy file, both counted from 1.
public struct SourceLocation: Sendable, Hashable, Comparable, CustomStringConvertible {
    public let line: Int
    public let column: Int
    public init(line: Int, column: Int) { self.line = line; self.column = column }
    public var description: String { "\(line):\(column)" }
    public static func < (a: Self, b: Self) -> Bool { (a.line, a.column) < (b.line, b.column) }
}

/// One step of a key path: a table key or an array index.
public enum PathComponent: Sendable, Hashable {
    case key(String)
    case index(Int)
}

/// A key path as users read it: `allow[2].cidr[0]`, `dns.servers[1]`.
public struct KeyPath: Sendable, Hashable, CustomStringConvertible, ExpressibleByStringLiteral {
    public var components: [PathComponent]

    public init(_ components: [PathComponent] = []) { self.components = components }
    public init(stringLiteral value: String) {
        components = value.split(separator: ".").map { .key(String($0)) }
    }

    public func key(_ k: String) -> KeyPath { KeyPath(components + [.key(k)]) }
    public func index(_ i: Int) -> KeyPath { KeyPath(components + [.index(i)]) }
    public var parent: KeyPath? { components.isEmpty ? nil : KeyPath(Array(components.dropLast())) }

    public var description: String {
        var s = ""
        for c in components {
            switch c {
            case .key(let k):
                let bare = !k.isEmpty && k.unicodeScalars.allSatisfy {
                    ($0.properties.isAlphabetic && $0.isASCII) || ("0"..."9").contains($0) || $0 == "_" || $0 == "-"
                }
                let text = bare ? k : "\"\(k)\""
                s += s.isEmpty ? text : "." + text
            case .index(let i): s += "[\(i)]"
            }
        }
        return s.isEmpty ? "(top level)" : s
    }
}

/// Finds where each key and value of a TOML document stands in its text.
///
/// TOMLKit parses the document but does not expose source positions of nodes, and the
/// contract wants `file:line:col` on every error. This scanner walks the same text once
/// and records, for each key path, where its key and its value begin. It is not a
/// validating parser: TOMLKit has already accepted the text when this runs, so the
/// scanner may assume well-formed input and only needs to stay in step with it.
public struct SourceLocator: Sendable {
    private var keys: [KeyPath: SourceLocation] = [:]
    private var values: [KeyPath: SourceLocation] = [:]

    public init(text: String) {
        var scanner = Scanner(Array(text.unicodeScalars))
        scanner.run(into: &self)
    }

    /// Where the key (or table header) of `path` stands; falls back to the nearest parent.
    public func keyLocation(_ path: KeyPath) -> SourceLocation? {
        var p: KeyPath? = path
        while let cur = p {
            if let l = keys[cur] ?? values[cur] { return l }
            p = cur.parent
        }
        return nil
    }

    /// Where the value of `path` begins; falls back to its key, then to the parents.
    public func valueLocation(_ path: KeyPath) -> SourceLocation? {
        values[path] ?? keyLocation(path)
    }

    fileprivate mutating func record(key path: KeyPath, at loc: SourceLocation) {
        if keys[path] == nil { keys[path] = loc }
    }
    fileprivate mutating func record(value path: KeyPath, at loc: SourceLocation) {
        if values[path] == nil { values[path] = loc }
    }
}

/// Builds the locator on first use: a valid policy without warnings never needs one, and
/// for a policy with 100,000 prefixes the scan costs as much as the parse.
final class LazySourceLocator: @unchecked Sendable {
    private let text: String
    private var built: SourceLocator?
    private let lock = NSLock()

    init(text: String) { self.text = text }

    var locator: SourceLocator {
        lock.lock()
        defer { lock.unlock() }
        if let b = built { return b }
        let b = SourceLocator(text: text)
        built = b
        return b
    }
}

private struct Scanner {
    let s: [Unicode.Scalar]
    var i = 0
    var line = 1
    var col = 1
    /// Resolved paths of arrays of tables, with the number of elements seen so far.
    var arrayTables: [KeyPath: Int] = [:]
    /// Inline arrays of tables are not tracked; only `[[x]]` headers need counting.

    init(_ s: [Unicode.Scalar]) { self.s = s }

    var loc: SourceLocation { SourceLocation(line: line, column: col) }
    var atEnd: Bool { i >= s.count }
    var cur: Unicode.Scalar? { i < s.count ? s[i] : nil }
    func peek(_ n: Int) -> Unicode.Scalar? { i + n < s.count ? s[i + n] : nil }

    mutating func advance() {
        guard i < s.count else { return }
        if s[i] == "\n" { line += 1; col = 1 } else { col += 1 }
        i += 1
    }

    mutating func skipSpaces() { while let c = cur, c == " " || c == "\t" { advance() } }

    mutating func skipSpacesNewlinesComments() {
        while let c = cur {
            if c == " " || c == "\t" || c == "\n" || c == "\r" { advance() }
            else if c == "#" { while let d = cur, d != "\n" { advance() } }
            else { break }
        }
    }

    mutating func skipToLineEnd() { while let c = cur, c != "\n" { advance() } }

    mutating func run(into out: inout SourceLocator) {
        var table = KeyPath()
        while true {
            skipSpacesNewlinesComments()
            guard let c = cur else { return }
            if c == "[" {
                let at = loc
                let isArray = peek(1) == "["
                advance(); if isArray { advance() }
                skipSpaces()
                let raw = readDottedKey()
                var resolved = KeyPath()
                for (n, k) in raw.enumerated() {
                    resolved = resolved.key(k)
                    if n < raw.count - 1, let count = arrayTables[resolved] { resolved = resolved.index(count - 1) }
                }
                if isArray {
                    let count = arrayTables[resolved, default: 0]
                    arrayTables[resolved] = count + 1
                    out.record(key: resolved, at: at)
                    resolved = resolved.index(count)
                }
                out.record(key: resolved, at: at)
                table = resolved
                skipToLineEnd()
            } else {
                readKeyValue(under: table, into: &out)
                skipToLineEnd()
            }
        }
    }

    mutating func readKeyValue(under base: KeyPath, into out: inout SourceLocator) {
        let at = loc
        var path = base
        for k in readDottedKey() { path = path.key(k) }
        out.record(key: path, at: at)
        skipSpaces()
        if cur == "=" { advance() }
        skipSpaces()
        readValue(path, into: &out)
    }

    /// `a.b."c d"` -> ["a", "b", "c d"]; stops before `=` or `]`.
    mutating func readDottedKey() -> [String] {
        var parts: [String] = []
        while let c = cur {
            skipSpaces()
            guard let c2 = cur else { break }
            if c2 == "\"" || c2 == "'" {
                parts.append(readString())
            } else {
                var k = ""
                while let d = cur, d.properties.isAlphabetic || ("0"..."9").contains(d) || d == "_" || d == "-" {
                    k.unicodeScalars.append(d); advance()
                }
                parts.append(k)
            }
            skipSpaces()
            if cur == "." { advance(); continue }
            _ = c
            break
        }
        return parts
    }

    mutating func readValue(_ path: KeyPath, into out: inout SourceLocator) {
        out.record(value: path, at: loc)
        guard let c = cur else { return }
        switch c {
        case "[":
            advance()
            var n = 0
            while true {
                skipSpacesNewlinesComments()
                guard let d = cur else { return }
                if d == "]" { advance(); return }
                if d == "," { advance(); continue }
                let before = i
                readValue(path.index(n), into: &out)
                n += 1
                // What the scanner cannot read (it is not a parser) is stepped over, never
                // read again: unreadable text here once looped forever (Fuzz/FuzzPolicy).
                if i == before { advance() }
            }
        case "{":
            advance()
            while true {
                skipSpaces()
                guard let d = cur else { return }
                if d == "}" { advance(); return }
                if d == "," { advance(); continue }
                if d == "\n" { advance(); continue } // tolerated by newer TOML; harmless here
                let before = i
                readKeyValue(under: path, into: &out)
                if i == before { advance() } // as in arrays
            }
        case "\"", "'":
            _ = readString()
        default:
            while let d = cur, d != ",", d != "]", d != "}", d != "\n", d != "#" { advance() }
        }
    }

    /// Reads a basic, literal or multi-line string and returns its raw content
    /// (escapes are kept as written; only keys use the result).
    mutating func readString() -> String {
        guard let q = cur else { return "" }
        let multi = peek(1) == q && peek(2) == q
        if multi { advance(); advance(); advance() } else { advance() }
        var out = ""
        while let c = cur {
            if c == "\\" && q == "\"" {
                advance()
                if let e = cur { out.unicodeScalars.append(e); advance() }
                continue
            }
            if c == q {
                if !multi { advance(); return out }
                if peek(1) == q && peek(2) == q {
                    advance(); advance(); advance()
                    // Up to two more quotes may belong to the content.
                    while cur == q { advance() }
                    return out
                }
            }
            out.unicodeScalars.append(c)
            advance()
        }
        return out
    }
}
