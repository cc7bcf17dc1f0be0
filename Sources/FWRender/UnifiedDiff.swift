/// A line diff (Myers' algorithm, O((N+M)·D), fast when the two sides are close, as a
/// live ruleset and its policy usually are) printed as a unified diff.
public struct UnifiedDiff: Sendable {
    public var context = 3
    public var color = false

    public init(context: Int = 3, color: Bool = false) { self.context = context; self.color = color }

    enum Op: Equatable { case same, delete, insert }

    /// Empty when the texts are equal.
    public func render(old: String, new: String, oldLabel: String, newLabel: String) -> String {
        let a = Self.lines(old), b = Self.lines(new)
        let script = Self.edits(a, b)
        guard script.contains(where: { $0 != .same }) else { return "" }
        var out = paint("--- \(oldLabel)\n+++ \(newLabel)\n", "1")
        // Walk the edit script, grouping changes with `context` lines around them into hunks.
        var lines: [(Op, String, Int, Int)] = [] // op, text, index in a, index in b
        var i = 0, j = 0
        for op in script {
            switch op {
            case .same: lines.append((.same, a[i], i, j)); i += 1; j += 1
            case .delete: lines.append((.delete, a[i], i, j)); i += 1
            case .insert: lines.append((.insert, b[j], i, j)); j += 1
            }
        }
        var k = 0
        while k < lines.count {
            guard lines[k].0 != .same else { k += 1; continue }
            let start = max(0, k - context)
            var end = k
            var lastChange = k
            while end < lines.count {
                if lines[end].0 != .same { lastChange = end }
                if end - lastChange > 2 * context { break }
                end += 1
            }
            end = min(lines.count, lastChange + context + 1)
            let hunk = lines[start..<end]
            let oldCount = hunk.filter { $0.0 != .insert }.count
            let newCount = hunk.filter { $0.0 != .delete }.count
            let oldStart = hunk.first!.2 + (oldCount == 0 ? 0 : 1)
            let newStart = hunk.first!.3 + (newCount == 0 ? 0 : 1)
            out += paint("@@ -\(oldStart),\(oldCount) +\(newStart),\(newCount) @@\n", "36")
            for (op, text, _, _) in hunk {
                switch op {
                case .same: out += " \(text)\n"
                case .delete: out += paint("-\(text)\n", "31")
                case .insert: out += paint("+\(text)\n", "32")
                }
            }
            k = end
        }
        return out
    }

    private func paint(_ s: String, _ code: String) -> String {
        guard color else { return s }
        let body = s.hasSuffix("\n") ? String(s.dropLast()) : s
        return "\u{1b}[\(code)m\(body)\u{1b}[0m" + (s.hasSuffix("\n") ? "\n" : "")
    }

    /// Lines without their terminators; a final newline does not make an extra empty line.
    static func lines(_ text: String) -> [String] {
        var parts = text.split(separator: "\n", omittingEmptySubsequences: false).map(String.init)
        if parts.last == "" { parts.removeLast() }
        return parts
    }

    /// The shortest edit script from a to b.
    static func edits(_ a: [String], _ b: [String]) -> [Op] {
        let n = a.count, m = b.count
        let max = n + m
        var v = [Int](repeating: 0, count: 2 * max + 2)
        var trace: [[Int]] = []
        outer: for d in 0...max {
            trace.append(v)
            for k in stride(from: -d, through: d, by: 2) {
                var x: Int
                if k == -d || (k != d && v[max + k - 1] < v[max + k + 1]) {
                    x = v[max + k + 1]
                } else {
                    x = v[max + k - 1] + 1
                }
                var y = x - k
                while x < n && y < m && a[x] == b[y] { x += 1; y += 1 }
                v[max + k] = x
                if x >= n && y >= m { trace.append(v); break outer }
            }
        }
        // Backtrack through the saved frontiers.
        var ops: [Op] = []
        var x = n, y = m
        for d in stride(from: trace.count - 2, through: 0, by: -1) {
            let vd = trace[d]
            let k = x - y
            let prevK = (k == -d || (k != d && vd[max + k - 1] < vd[max + k + 1])) ? k + 1 : k - 1
            let prevX = vd[max + prevK]
            let prevY = prevX - prevK
            while x > prevX && y > prevY { ops.append(.same); x -= 1; y -= 1 }
            if d > 0 { ops.append(x == prevX ? .insert : .delete) }
            x = prevX; y = prevY
        }
        while x > 0 && y > 0 { ops.append(.same); x -= 1; y -= 1 }
        return ops.reversed()
    }
}
