/// Refuses, before TOMLKit sees it, the text that TOMLKit and the toml++ inside it cannot
/// take safely. All were found by Fuzz/FuzzPolicy; each is reported as the syntax error
/// the TOML parser should have reported.
///
/// - A NUL character. TOMLKit hands the text to toml++ as a C string, so toml++ reads only
///   up to the first NUL and the rest of the file would be silently ignored (TOML allows no
///   NUL anywhere, not even in a comment).
/// - A table header whose key starts with neither a key character nor a quote: "[[`a]]",
///   "[[[1]]]", "[=]", a lone "[" at the end of a line. toml++ 3.4.0 (embedded by TOMLKit
///   0.6.0) does not check that character, and an assertion in its parse_key aborts the
///   whole process (fixed upstream in marzer/tomlplusplus#301).
/// - An array element that starts with "}" or a line separator other than LF (U+0085,
///   U+2028, U+2029), as in `ports = [80,}443]`: toml++ 3.4.0 does not check that either,
///   and an assertion in its parse_value aborts. This check skips strings and comments, as
///   toml++ does, so only what toml++ reads as TOML counts; "[" or "," then "}" is never
///   valid TOML.
///
/// The header check reads lines, not the TOML structure: a line whose first non-blank
/// character is "[" counts as a table header, even inside a multi-line array or string. It
/// may therefore also refuse a multi-line array holding, on a line of its own, an inner
/// array that starts with such a character (`[{`), or a multi-line string with such a line.
/// No valid policy has either: no policy value is an array of arrays or text over several
/// lines.
enum TOMLPrecheck {
    static func check(_ text: String) -> TOMLDocument.SyntaxError? {
        let s = Array(text.unicodeScalars)
        return headerOrNUL(s) ?? arrayElement(s)
    }

    private static func headerOrNUL(_ s: [Unicode.Scalar]) -> TOMLDocument.SyntaxError? {
        var i = 0
        var line = 1
        while i < s.count {
            if line == 1, s[i] == "\u{FEFF}" { i += 1 }
            let start = i
            skipBlanks(s, &i)
            if i < s.count, s[i] == "[" {
                i += 1
                let hadBlank = skipBlanks(s, &i)
                var crashes = true
                if i < s.count, s[i] == "[" {
                    // "[ [": toml++ reports that the brackets must be contiguous.
                    crashes = !hadBlank
                    i += 1
                    skipBlanks(s, &i)
                }
                if crashes, i < s.count, s[i] != "\0", !startsKey(s[i]) {
                    return TOMLDocument.SyntaxError(
                        location: SourceLocation(line: line, column: i - start + 1),
                        message: "TOML syntax error: Error while parsing table header: expected bare key starting character or string delimiter, saw '\(shown(s[i]))'")
                }
            }
            while i < s.count, s[i] != "\n" {
                if s[i] == "\0" {
                    return TOMLDocument.SyntaxError(
                        location: SourceLocation(line: line, column: i - start + 1),
                        message: "TOML syntax error: a NUL character (U+0000), which TOML does not allow anywhere")
                }
                i += 1
            }
            i += 1
            line += 1
        }
        return nil
    }

    private static func arrayElement(_ s: [Unicode.Scalar]) -> TOMLDocument.SyntaxError? {
        var i = 0
        var line = 1
        var lineStart = 0
        var elementNext = false // after "[" or ",": what follows blanks and comments starts an element
        while i < s.count {
            let c = s[i]
            switch c {
            case "\n":
                i += 1
                line += 1
                lineStart = i
            case " ", "\t", "\r":
                i += 1
            case "#":
                while i < s.count, s[i] != "\n" { i += 1 }
            case "\"", "'":
                elementNext = false
                skipString(s, &i, &line, &lineStart)
            default:
                if elementNext, c == "}" || c == "\u{85}" || c == "\u{2028}" || c == "\u{2029}" {
                    return TOMLDocument.SyntaxError(
                        location: SourceLocation(line: line, column: i - lineStart + 1),
                        message: "TOML syntax error: Error while parsing array: expected value or closing ']', saw '\(shown(c))'")
                }
                elementNext = c == "[" || c == ","
                i += 1
            }
        }
        return nil
    }

    /// Past the string that starts at `i`: basic or literal, on one line or several. A
    /// line break ends a one-line string (toml++ stops there with an error of its own).
    private static func skipString(_ s: [Unicode.Scalar], _ i: inout Int, _ line: inout Int, _ lineStart: inout Int) {
        let q = s[i]
        let multi = i + 2 < s.count && s[i + 1] == q && s[i + 2] == q
        i += multi ? 3 : 1
        while i < s.count {
            let c = s[i]
            if c == "\n" {
                guard multi else { return }
                line += 1
                lineStart = i + 1
            } else if c == "\\", q == "\"" {
                if i + 1 < s.count, s[i + 1] == "\n" {
                    guard multi else { return }
                    line += 1
                    lineStart = i + 2
                }
                i += 2
                continue
            } else if c == q {
                if !multi { i += 1; return }
                if i + 2 < s.count, s[i + 1] == q, s[i + 2] == q {
                    i += 3
                    while i < s.count, s[i] == q { i += 1 } // up to two more belong to the string
                    return
                }
            }
            i += 1
        }
    }

    /// Spaces and tabs, the only blanks toml++ skips there; true when there were some.
    @discardableResult
    private static func skipBlanks(_ s: [Unicode.Scalar], _ i: inout Int) -> Bool {
        let from = i
        while i < s.count, s[i] == " " || s[i] == "\t" { i += 1 }
        return i > from
    }

    /// What toml++ handles after the brackets: a bare key character or a quote, and what it
    /// reports itself ("]", and a blank other than a space or tab).
    private static func startsKey(_ c: Unicode.Scalar) -> Bool {
        switch c {
        case "A"..."Z", "a"..."z", "0"..."9", "_", "-", "\"", "'", "]": return true
        case "\u{A0}", "\u{1680}", "\u{180E}", "\u{2000}"..."\u{200B}", "\u{202F}", "\u{205F}", "\u{2060}", "\u{3000}", "\u{FEFF}":
            return true
        default: return false
        }
    }

    private static func shown(_ c: Unicode.Scalar) -> String {
        switch c {
        case "\n": return "\\n"
        case "\r": return "\\r"
        case "\0"..."\u{1F}", "\u{7F}":
            let hex = String(c.value, radix: 16, uppercase: true)
            return "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
        default: return String(c)
        }
    }
}
