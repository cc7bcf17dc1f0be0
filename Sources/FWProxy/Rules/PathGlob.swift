import Foundation

/// Path globs for `[[allow]] paths`: `*` matches any run of characters (including "/"),
/// everything else is literal, and the whole path must match.
enum PathGlob {
    static func matches(glob: String, path: String) -> Bool {
        matches(glob: Array(glob.utf8), path: Array(path.utf8))
    }

    /// Iterative wildcard match with one backtrack point: O(glob * path) at worst, no
    /// recursion, so a hostile path cannot blow the stack.
    static func matches(glob g: [UInt8], path s: [UInt8]) -> Bool {
        let star = UInt8(ascii: "*")
        var gi = 0, si = 0
        var starAt = -1, resumeAt = 0
        while si < s.count {
            if gi < g.count, g[gi] == star {
                starAt = gi
                resumeAt = si
                gi += 1
            } else if gi < g.count, g[gi] == s[si] {
                gi += 1
                si += 1
            } else if starAt >= 0 {
                gi = starAt + 1
                resumeAt += 1
                si = resumeAt
            } else {
                return false
            }
        }
        while gi < g.count, g[gi] == star { gi += 1 }
        return gi == g.count
    }

    /// The path of a request target: origin-form up to "?" or "#"; absolute-form
    /// ("http://host/p?q") reduced to "/p" ("" when it has no path: then nothing matches).
    static func pathPart(of target: String) -> String {
        var t = Substring(target)
        if !t.hasPrefix("/"), let scheme = t.range(of: "://") {
            let afterAuthority = t[scheme.upperBound...]
            if let slash = afterAuthority.firstIndex(where: { $0 == "/" || $0 == "?" || $0 == "#" }) {
                t = afterAuthority[slash...]
                if !t.hasPrefix("/") { t = "/" + t }
            } else {
                t = "/"
            }
        }
        if let end = t.firstIndex(where: { $0 == "?" || $0 == "#" }) { t = t[..<end] }
        return String(t)
    }

    /// Why a path cannot be matched safely, or nil.
    static func ambiguity(in path: String) -> String? {
        let u = Array(path.utf8)
        guard u.first == UInt8(ascii: "/") else { return "it does not start with \"/\"" }
        if u.contains(where: { $0 < 0x21 || $0 >= 0x7f }) { return "it holds a control, space or non-ASCII byte" }
        if u.contains(UInt8(ascii: "\\")) { return "it holds a backslash" }
        var i = 0
        while i + 2 < u.count {
            if u[i] == UInt8(ascii: "%") {
                let pair = (u[i + 1] | 0x20, u[i + 2] | 0x20)
                switch pair {
                case (UInt8(ascii: "2"), UInt8(ascii: "e")): return "it holds an encoded \".\" (%2e)"
                case (UInt8(ascii: "2"), UInt8(ascii: "f")): return "it holds an encoded \"/\" (%2f)"
                case (UInt8(ascii: "5"), UInt8(ascii: "c")): return "it holds an encoded \"\\\" (%5c)"
                case (UInt8(ascii: "2"), UInt8(ascii: "5")): return "it holds an encoded \"%\" (%25)"
                case (UInt8(ascii: "0"), UInt8(ascii: "0")): return "it holds an encoded NUL (%00)"
                default: break
                }
            }
            i += 1
        }
        for segment in path.split(separator: "/", omittingEmptySubsequences: false) {
            let bare = segment.split(separator: ";", maxSplits: 1, omittingEmptySubsequences: false).first ?? segment
            if bare == "." || bare == ".." { return "it holds a \"\(bare)\" segment" }
        }
        return nil
    }
}
